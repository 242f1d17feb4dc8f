"""The engine's one door to a host: run a command, put a file, get a file (pyinfra's connector).

`ssh.SSHConnection` implements it over Fabric; the tests' FakeHost implements it in memory. Every
failure is a RemoteError that names the host and the op; a timeout and a dropped connection are told
apart by their class.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, TextIO

from devkit.errors import RemoteError
from devkit.provision.ssh.command import Command


class Result(NamedTuple):
    rc: int
    stdout: str
    stderr: str


class CommandTimedOut(RemoteError):
    """The command outlived its timeout; its process group on the host was killed."""


class ConnectionLost(RemoteError):
    """The host stopped answering, or the session ended without an exit status."""


class Interrupted(RemoteError):
    """Ctrl-C: the command's process group on the host was killed."""


class Held(Protocol):
    said: str  # what the command printed before its ready line

    def release(self) -> None: ...


class Connection(Protocol):
    name: str

    def run(
        self, cmd: Command, op: str, *, check: bool = True, timeout: float | None = None
    ) -> Result:
        """Run cmd under `sh`; with check, a non-zero exit is a RemoteError with stderr's tail."""
        ...

    def put(self, path: str, data: bytes, mode: int, op: str, owner: str = "") -> None:
        """Write path atomically: a temp file with the mode set before any data, then a rename."""
        ...

    def get(self, path: str) -> bytes | None:
        """The file's bytes, or None when it cannot be read."""
        ...

    def stream(self, cmd: Command, out: TextIO, pty: bool = False) -> int:
        """Run cmd with its output copied to `out` as it comes (logs -f); returns the exit code."""
        ...

    def interrupt(self) -> None:
        """Kill whatever command is running on the host now (called from another thread)."""
        ...

    def hold(self, cmd: Command, op: str, ready: str, timeout: float) -> Held:
        """Start cmd and keep it running until release(): returns once it prints `ready`, with
        what it printed before (`said`); if it ends first, a RemoteError with its output. Its stdin closes on release
        (or when the connection drops), which is how it knows to end."""
        ...

    def close(self) -> None: ...


def tail(text: str, lines: int = 22) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def failed(name: str, op: str, cmd: Command, res: Result) -> RemoteError:
    return RemoteError(
        name, op, f"exit code {res.rc}", cmd.shown(), res.rc, tail(res.stderr or res.stdout)
    )
