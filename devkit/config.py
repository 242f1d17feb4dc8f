"""`[tool.devkit]` in pyproject.toml: the nearest pyproject.toml that has one (up to the repository
root), parsed with tomllib, validated against its schema (devkit.config_schema), merged over a preset.

The hook paths run on every commit: the validated result is cached in .git, keyed by the file's
identity, so that a warm run imports neither tomllib nor the schema (marshal is built in)."""

from __future__ import annotations

import marshal  # built in
import os
import zlib  # built in (or a small extension): the checksum of the cache key

from devkit import __version__, files
from devkit.conventions.settings import BranchSettings, CommitSettings, NewsSettings, Settings
from devkit.errors import ConfigError
from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

CACHE_NAME = "devkit-config.cache"
# what a cache entry depends on besides the file: its shape and devkit's presets
CACHE_FORMAT = (5, __version__)
NO_TABLE = "no [tool.devkit]"  # a cached verdict: the file has no table, look further up
DEFAULTS = "<defaults>"  # the cache entry of the preset defaults, when no file has the table


def candidates(start: str | os.PathLike[str] | None = None) -> tuple[list[str], str | None]:
    """(every pyproject.toml from start up to the repository root, nearest first; that root's .git
    directory). Outside a repository: up to the filesystem root."""
    here = os.path.abspath(start or os.getcwd())
    found: list[str] = []
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            found.append(candidate)
        dotgit = os.path.join(here, ".git")
        if os.path.isdir(dotgit):
            return found, dotgit
        if os.path.exists(dotgit):  # a worktree or submodule: `gitdir: <path>`
            return found, _linked_gitdir(dotgit)
        parent = os.path.dirname(here)
        if parent == here:
            return found, None
        here = parent


def _linked_gitdir(dotgit: str) -> str | None:
    try:
        with open(dotgit, encoding="utf-8") as fh:
            line = fh.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not line.startswith("gitdir: "):
        return None
    path = os.path.join(os.path.dirname(dotgit), line.removeprefix("gitdir: "))
    return path if os.path.isdir(path) else None


def gitdir(start: str | os.PathLike[str] | None = None) -> str | None:
    """The git directory of the repository around start (a worktree's own), None outside one."""
    return candidates(start)[1]


class _Cache:
    """The validated [tool.devkit] of each pyproject.toml, in .git, keyed by the file's identity."""

    def __init__(self, gitdir: str | None) -> None:
        self.path = os.path.join(gitdir, CACHE_NAME) if gitdir else None
        self.entries: dict[str, Any] = {}
        self.dirty = False
        if self.path:
            try:
                with open(self.path, "rb") as fh:
                    fmt, entries = marshal.load(fh)
                if fmt == CACHE_FORMAT and isinstance(entries, dict):
                    self.entries = entries
            except (OSError, EOFError, ValueError, TypeError):
                pass

    def get(self, file: str, stamp: tuple[int, ...]) -> Any:
        hit = self.entries.get(file)
        return hit[1] if hit and tuple(hit[0]) == stamp else None

    def put(self, file: str, stamp: tuple[int, ...], data: Any) -> None:
        self.entries[file] = (stamp, data)
        self.dirty = True

    def save(self) -> None:
        if not (self.path and self.dirty):
            return
        try:
            files.write_whole(self.path, marshal.dumps((CACHE_FORMAT, self.entries)))
        except (OSError, ValueError):  # read-only .git, or a value marshal cannot store (dates)
            pass


def _parse(file: str, data: bytes) -> Any:
    """The validated data of file's [tool.devkit] (its bytes), or NO_TABLE."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", f"not valid UTF-8 (byte {exc.start})") from None
    tool = files.parse_toml(text, file).get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(file, "tool", "must be a table")
    if "devkit" not in tool:
        return NO_TABLE
    table = tool["devkit"]
    if not isinstance(table, dict):
        raise ConfigError(file, "tool.devkit", "must be a table")
    from devkit import config_schema

    return config_schema.validate(table, file)


Stamp = tuple[int, int, int, int, int]


def _read(file: str) -> tuple[Stamp, bytes]:
    """The file's bytes and its identity for the cache: size, inode, modification and change times,
    and a checksum of the content (a same-size rewrite within one tick of the file system's clock
    keeps every time)."""
    if not os.path.lexists(file):
        raise ConfigError(file, "", "file not found")
    try:
        data = files.read_regular(file, "the file", files.CONFIG_LIMIT)
        st = os.stat(file)
    except files.Unreadable as exc:
        hint = "Point --config at a pyproject.toml." if "regular file" in exc.reason else exc.hint
        raise ConfigError(file, "", f"cannot read it: {exc.reason}", hint) from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read it: {exc.strerror}") from None
    return (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, zlib.crc32(data)), data


def folder_scopes(root: str, globs: tuple[str, ...]) -> tuple[str, ...]:
    """The names of the folders the globs match under root (`src/ai/backend/*` -> agent, manager, ...)."""
    if not globs:
        return ()
    import glob  # only for projects that derive scopes from folders

    names = set()
    for pattern in globs:
        for path in glob.glob(os.path.join(root or ".", pattern)):
            name = os.path.basename(path.rstrip("/"))
            if os.path.isdir(path) and not name.startswith((".", "_")):
                names.add(name)
    return tuple(sorted(names))


def settings(data: dict[str, Any], source: str, root: str) -> Settings:
    """Records from validated data (devkit.config_schema.validate)."""
    commit = CommitSettings(**data["commit"])
    if commit.scope_dirs:  # not cached: folders come and go
        commit = commit._replace(folder_scopes=folder_scopes(root, commit.scope_dirs))
    return Settings(
        data["preset"],
        commit,
        BranchSettings(**data["branch"]),
        NewsSettings(**data["news"]),
        data["rules"],
        source,
        root,
        data["extra"],
    )


def build(table: dict[str, Any], source: str, root: str) -> Settings:
    """Settings from a raw [tool.devkit] table: validated, merged over its preset."""
    from devkit import config_schema

    return settings(config_schema.validate(table, source), source, root)


def section(cfg: Settings, name: str) -> dict[str, Any]:
    """[tool.devkit.NAME] of one command (ci, lint, init), validated, over its preset's defaults."""
    from devkit import config_schema

    return config_schema.section(cfg.preset, cfg.extra, cfg.source, name)


def load(
    start: str | os.PathLike[str] | None = None, path: str | os.PathLike[str] | None = None
) -> Settings:
    """Settings from the nearest pyproject.toml that has [tool.devkit] (up to the repository root),
    or from `path`; else the defaults."""
    if path:
        found, gitdir = [os.path.abspath(path)], None
    else:
        found, gitdir = candidates(start)
    cache = _Cache(gitdir)
    try:
        for file in found:
            stamp, raw = _read(file)
            data = cache.get(file, stamp)
            if data is None:
                data = _parse(file, raw)
                cache.put(file, stamp, data)
            if data != NO_TABLE:
                return settings(data, file, os.path.dirname(file))
        source = found[0] if path else ""  # an explicit file without the table: its defaults
        data = cache.get(DEFAULTS, (0, 0, 0))
        if data is None:
            from devkit import config_schema

            data = config_schema.validate({}, source)
            cache.put(DEFAULTS, (0, 0, 0), data)
        return settings(data, source, os.path.dirname(source))
    finally:
        cache.save()
