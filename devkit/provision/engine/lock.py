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
from devkit.provision.ssh.command import Command, Part, cat, q, sh
from devkit.provision.ssh.connection import Connection, Held
from devkit.provision.stack import layout

WAIT = 10  # seconds a second run waits for the first before it says who holds the lock
READY = "devkit-locked"


def base_word(base: str) -> Part:
    """The base dir as one shell word, @devkit/ and ~/ expanded on the host (layout.on_host)."""
    if base == layout.HOME or base.startswith(layout.HOME + "/"):
        home = f'"$(if [ "$(id -u)" = 0 ]; then echo {layout.ROOT_HOME}; else echo "$HOME/.devkit"; fi)"'
        return cat(home, q(base[len(layout.HOME) :]))
    if base == "~" or base.startswith("~/"):
        return cat('"$HOME"', q(base[1:]))
    return q(base)


def _lock_file(base: str) -> Command:
    """Shell that sets $d (the login user's lock folder) and $f (this base dir's lock file), named
    by a hash of the base dir's canonical path: every spelling of it takes the same lock."""
    return sh(
        "d=/tmp/devkit-locks-$(id -u) &&",
        'f="$d/$(realpath -m --',
        base_word(base),
        "| tr -d '\\n' | sha256sum | cut -c1-16).lock\"",
    )


def remove(base: str) -> Command:
    """Take the base dir's lock file away (teardown --purge), and the folder once it is empty."""
    return sh(_lock_file(base), '&& rm -f -- "$f" "$f.holder"; rmdir -- "$d" 2>/dev/null || true')


def command(base: str, holder: str, wait: int = WAIT) -> Command:
    inner = sh('printf "%s\\n"', q(holder), '>"$0.holder"; echo', READY, "; cat >/dev/null")
    return sh(
        _lock_file(base),
        '&& mkdir -p -m 0700 "$d" && flock -w',
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
