"""The one door to local subprocesses.

`quick` spawns with os.posix_spawn and pipes: the hook paths ask git small questions, and importing
`subprocess` alone costs them ~10 ms (about what the rest of a hook run costs).
"""

from __future__ import annotations

import os
import select  # every `quick` call polls its pipes

from devkit.record import Record


class Result(Record):
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


def _drain(out_fd: int, err_fd: int) -> tuple[bytes, bytes]:
    """Read both pipes to EOF together, so a chatty stderr can never block the child."""
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN | select.POLLHUP)
    open_fds = set(chunks)
    while open_fds:
        for fd, _ in poller.poll():
            data = os.read(fd, 1 << 16)
            if data:
                chunks[fd].append(data)
            else:
                poller.unregister(fd)
                open_fds.discard(fd)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


def quick(*cmd: str, env: dict[str, str] | None = None) -> Result:
    """Run a command with its output captured; no stdin, no timeout."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = os.posix_spawnp(
                cmd[0],
                list(cmd),
                os.environ if env is None else env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, null, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
            )
        finally:
            os.close(null)
    except OSError as exc:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        return Result(127, b"", f"{cmd[0]}: cannot run it ({exc.strerror})".encode())
    os.close(out_w)
    os.close(err_w)
    try:
        stdout, stderr = _drain(out_r, err_r)
    finally:
        os.close(out_r)
        os.close(err_r)
    _, status = os.waitpid(pid, 0)
    return Result(os.waitstatus_to_exitcode(status), stdout, stderr)


def run(
    *cmd: str,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float | None = None,
) -> Result:
    """Run a command and capture its output; a missing program is returncode 127, not an exception."""
    import subprocess  # ~10 ms: the hook paths use `quick`

    try:
        p = subprocess.run(
            cmd, cwd=cwd, env=env, input=input, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        return Result(127, b"", f"{cmd[0]}: command not found ({exc.strerror})".encode())
    return Result(p.returncode, p.stdout, p.stderr)
