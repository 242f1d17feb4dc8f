"""The files a user hands devkit (a commit message, pyproject.toml, a towncrier config, a stack, the
GitHub event): regular files only, read with a bound, and TOML or JSON parsed by one loader per format.

A FIFO or a device is refused before it is opened for reading (opening a FIFO waits for a writer;
/dev/zero never ends), a file larger than its bound is an error rather than a memory exhaustion, and
a nesting deep enough to exhaust Python's recursion is a configuration error, not a traceback.

Standard library only, and nothing slow at import: the commit-msg hook reads its file here.
"""

from __future__ import annotations

import os
import stat  # built in (_stat)

from devkit.errors import ConfigError, DevkitError
from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

MiB = 1 << 20
CONFIG_LIMIT = 16 * MiB  # pyproject.toml, towncrier.toml, stack.toml
EVENT_LIMIT = 64 * MiB  # GitHub caps a webhook payload at 25 MB
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFDIR: "a folder",
    stat.S_IFSOCK: "a socket",
}


class Unreadable(DevkitError):
    """A file devkit cannot read: `reason` says why (strerror, "a FIFO, not a regular file", ...)."""

    def __init__(self, what: str, path: str, reason: str, hint: str = "") -> None:
        super().__init__(f"cannot read {what} {path}: {reason}", hint)
        self.reason = reason


class TooLarge(Unreadable):
    """The file holds more than its bound; `head` is its first `limit` bytes."""

    def __init__(self, what: str, path: str, limit: int, head: bytes) -> None:
        size = f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit} bytes"
        super().__init__(what, path, f"it is larger than {size}", "Is it the right file?")
        self.head = head


def not_regular(mode: int) -> str:
    """What a file of this mode is when it is not a regular file ("" when it is)."""
    if stat.S_ISREG(mode):
        return ""
    return f"it is {_KINDS.get(stat.S_IFMT(mode), 'a special file')}, not a regular file"


def read_regular(path: str | os.PathLike[str], what: str, limit: int) -> bytes:
    """The bytes of the regular file at path, at most `limit` of them (TooLarge beyond). A FIFO or a
    device is refused without being opened for reading; errors name `what` and the path."""
    name = os.fspath(path)
    try:
        problem = not_regular(os.stat(name).st_mode)
        if problem:
            raise Unreadable(what, name, problem)
        # O_NONBLOCK: a FIFO swapped in after the check still cannot block the open
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Unreadable(what, name, exc.strerror or str(exc)) from None
    try:
        problem = not_regular(os.fstat(fd).st_mode)
        if problem:
            raise Unreadable(what, name, problem)
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise Unreadable(what, name, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise TooLarge(what, name, limit, data[:limit])
    return data


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """The one TOML loader: tomllib, its syntax errors and a too-deep nesting as ConfigError."""
    import tomllib  # ~5 ms: only when a file is parsed (the hook paths cache the result)

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            source, "", f"invalid TOML: {exc}", "Fix the TOML syntax at that line."
        ) from None
    except RecursionError:
        raise ConfigError(
            source, "", "invalid TOML: arrays or tables nested too deeply", "Flatten the nesting."
        ) from None


def read_toml(path: str | os.PathLike[str], limit: int = CONFIG_LIMIT) -> dict[str, Any]:
    """A TOML file: regular, bounded, UTF-8, parsed; every failure a ConfigError naming the file."""
    source = os.fspath(path)
    try:
        data = read_regular(source, "the file", limit)
        text = data.decode("utf-8")
    except Unreadable as exc:
        raise ConfigError(source, "", f"cannot read it: {exc.reason}", exc.hint) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not valid UTF-8 (byte {exc.start})") from None
    return parse_toml(text, source)


def read_json(path: str | os.PathLike[str], what: str, limit: int = EVENT_LIMIT) -> Any:
    """A JSON file: regular, bounded, UTF-8, parsed; every failure a one-line DevkitError."""
    import json

    name = os.fspath(path)
    data = read_regular(name, what, limit)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DevkitError(f"{what} {name} is not valid UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise DevkitError(f"{what} {name} is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise DevkitError(f"{what} {name} is not valid JSON: {exc}") from None


def write_whole(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
    """Write a file whole or not at all: a temp file beside it (`mode` set on it), renamed over it;
    on a failure the temp file is removed and the OSError raised."""
    target = os.fspath(path)
    head, name = os.path.split(target)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.devkit-tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
