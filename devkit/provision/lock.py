"""One run at a time per stack on a host: `flock` on a lock file of the base dir, held by a command
that lives as long as the SSH session that started it (so a run that dies releases it).

The lock file is in the login user's own folder under /tmp, named by a hash of the base dir: taking
the lock creates nothing in the base dir, so a run stopped by bad input leaves the host as it was."""

from __future__ import annotations

import getpass
import os
import socket
import time

from devkit.errors import RemoteError
from devkit.provision.command import Command, Part, cat, q, sh
from devkit.provision.connection import Connection, Held

WAIT = 10  # seconds a second run waits for the first before it says who holds the lock
READY = "devkit-locked"


def _base(base: str) -> Part:
    """The base dir as one shell word; a leading ~/ expands to the login user's home."""
    if base == "~" or base.startswith("~/"):
        return cat('"$HOME"', q(base[1:]))
    return q(base)


def command(base: str, holder: str, wait: int = WAIT) -> Command:
    inner = sh('printf "%s\\n"', q(holder), '>"$0.holder"; echo', READY, "; cat >/dev/null")
    return sh(
        'd=/tmp/devkit-locks-$(id -u) && mkdir -p -m 0700 "$d" &&',
        'f="$d/$(printf %s',
        _base(base),
        '| sha256sum | cut -c1-16).lock" &&',
        "flock -w",
        str(wait),
        '-E 75 "$f" sh -c',
        q(inner),
        '"$f"',
        '; rc=$?; [ "$rc" = 75 ] && cat "$f.holder" 2>/dev/null; exit "$rc"',
    )


def describe_me() -> str:
    return (
        f"devkit (pid {os.getpid()}) of {getpass.getuser()}@{socket.gethostname()}, "
        f"since {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )


def acquire(conn: Connection, base: str, wait: int = WAIT) -> Held:
    try:
        return conn.hold(command(base, describe_me(), wait), "lock", READY, wait + 30)
    except RemoteError as exc:
        if exc.rc == 75:
            holder = exc.stderr_tail.strip() or exc.stderr_tail or "another devkit run"
            raise RemoteError(
                conn.name,
                "lock",
                f"another run holds the lock on {base}: {holder.splitlines()[-1]}",
                hint=f"Wait for it to finish (it is waited for {wait} s), or stop it: the lock is "
                "released when its SSH session ends.",
            ) from None
        raise
