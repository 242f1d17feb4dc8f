"""What devkit records about each sandbox: <state dir>/sandbox/NAME/sandbox.json, plus its lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from devkit import paths
from devkit.errors import DevkitError
from devkit.provision.ssh.address import SANDBOX_NAME_RULE as NAME_RULE
from devkit.provision.ssh.address import SANDBOX_RESERVED as RESERVED
from devkit.provision.ssh.address import valid_sandbox_name as valid_name

FULL, NETNS, LOOPBACK = "full", "netns", "loopback"


class Sandbox(NamedTuple):
    name: str
    dir: Path
    mode: str  # "full" (its own root filesystem and namespaces), "netns" or "loopback"
    address: str
    port: int
    user: str
    netns: str  # netns mode: the named network namespace sshd runs in
    veth: str
    pid: int  # its sshd, as this machine numbers it
    release: str = ""  # full mode: the Debian release; otherwise this machine's own system
    init: int = 0  # full mode: the sandbox's PID 1, as this machine numbers it
    init_start: int = (
        0  # ... and its start time (clock ticks after boot), so a reused pid is not it
    )
    base: str = ""  # full mode: the cached root filesystem under its own layer
    cgroups: tuple[str, ...] = ()  # full mode: its cgroup in each hierarchy


def root() -> Path:
    return paths.state_dir() / "sandbox"


def check_name(name: str, what: str = "sandbox name") -> str:
    """`name`, or one line saying why it cannot name a sandbox (before it becomes a path)."""
    if name in RESERVED:
        raise DevkitError(f"{what} {name!r} is taken by devkit's own state", "Use another name.")
    if not valid_name(name):
        raise DevkitError(f"{what} {name!r} is not valid", f"Use {NAME_RULE}.")
    return name


def load(name: str) -> Sandbox | None:
    """The sandbox's record; None when there is none (or the name could not be one: no path is
    ever made of it)."""
    if not valid_name(name):
        return None
    try:
        data = json.loads((root() / name / "sandbox.json").read_text())
    except (OSError, ValueError):
        return None
    fields = {k: v for k, v in data.items() if k in Sandbox._fields}
    fields["dir"] = Path(data["dir"])
    fields["cgroups"] = tuple(data.get("cgroups", ()))
    return Sandbox(**fields)


def save(s: Sandbox) -> Sandbox:
    tmp = s.dir / "sandbox.json.tmp"
    tmp.write_text(json.dumps({**s._asdict(), "dir": str(s.dir), "cgroups": list(s.cgroups)}))
    os.replace(tmp, s.dir / "sandbox.json")
    return s


def all_sandboxes() -> list[Sandbox]:
    return [s for p in sorted(root().glob("*/sandbox.json")) if (s := load(p.parent.name))]


def start_time(pid: int) -> int:
    """A process's start time in clock ticks after boot (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def alive(pid: int) -> bool:
    """Is `pid` a live sshd? (checks the command line, so a reused pid is not mistaken for ours)"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return pid > 0 and b"sshd" in cmdline and not zombie(pid)


def init_alive(s: Sandbox) -> bool:
    return s.init > 0 and start_time(s.init) == s.init_start and not zombie(s.init)


def _make_root() -> None:
    """Create the state dir, remembering which directories devkit made (`forget` removes them)."""
    made = []
    for d in [root(), *root().parents]:
        if d.exists():
            break
        made.append(str(d))
    root().mkdir(parents=True, exist_ok=True)
    if made:
        (root() / "created.json").write_text(json.dumps(made))


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One `sandbox up`/`down` at a time per state dir (they share the bridge and the proxy): a lock
    on the directory itself, so the last `down` can remove it; a waiter whose directory was removed
    meanwhile locks the new one."""
    while True:
        _make_root()
        fd = os.open(root(), os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(root()).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                try:
                    yield
                finally:
                    if all(p.name == "created.json" for p in root().iterdir()):
                        forget()  # nothing of devkit's left: nor the dirs it made for it
                return
        finally:
            os.close(fd)


def forget() -> None:
    """Remove the (empty) state dir and the parents devkit created for it, if nothing else is in
    them (under `locked()`, once no sandbox is left)."""
    f = root() / "created.json"
    made = json.loads(f.read_text()) if f.is_file() else []
    f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: something else lives there, keep it
        root().rmdir()
        for d in made:
            if d != str(root()):
                os.rmdir(d)
