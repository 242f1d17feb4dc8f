"""The one door to local subprocesses."""

from __future__ import annotations

import os
import subprocess
from typing import NamedTuple


class Result(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


def run(
    *cmd: str,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float | None = None,
) -> Result:
    """Run a command and capture its output; a missing program is returncode 127, not an exception."""
    try:
        p = subprocess.run(
            cmd, cwd=cwd, env=env, input=input, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        return Result(127, b"", f"{cmd[0]}: command not found ({exc.strerror})".encode())
    return Result(p.returncode, p.stdout, p.stderr)
