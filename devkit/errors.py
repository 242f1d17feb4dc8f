"""Errors are values until `cli.main` turns them into one line and an exit code."""

from __future__ import annotations


class ExitCode:
    """The exit codes (plain ints: an IntEnum class costs a hook run ~0.2 ms to create)."""

    OK = 0
    VIOLATIONS = 1
    ERROR = 2
    INTERRUPTED = 130


class DevkitError(Exception):
    """An expected failure: printed as one line (plus an optional hint), exit code 2."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(DevkitError):
    """A wrong key or value in a configuration file; the message names the file and the key."""

    def __init__(self, source: str, key: str, message: str, hint: str = "") -> None:
        where = f"{source}: " if source else ""
        keypart = f"{key}: " if key else ""
        super().__init__(f"{where}{keypart}{message}", hint)
        self.source = source
        self.key = key


class GitError(DevkitError):
    """A git command failed in a way the caller did not expect."""

    def __init__(self, cmd: list[str], returncode: int, stderr: str, hint: str = "") -> None:
        lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
        # git's own verdict (`fatal: ...`), not the usage text it may print after it
        tail = next(
            (line for line in lines if line.startswith(("fatal:", "error:"))),
            lines[-1] if lines else f"exit code {returncode}",
        )
        super().__init__(f"`{' '.join(cmd)}` failed: {tail}", hint)
        self.cmd = cmd
        self.returncode = returncode
        self.stderr = stderr


class RemoteError(DevkitError):
    """A step on a remote host failed: names the host, the op, the command, its exit code and stderr."""

    def __init__(
        self,
        host: str,
        op: str,
        message: str,
        cmd: str = "",
        rc: int | None = None,
        stderr_tail: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(f"{host}: {op}: {message}", hint)
        self.host = host
        self.op = op
        self.detail = message
        self.cmd = cmd
        self.rc = rc
        self.stderr_tail = stderr_tail
