"""One run at a time per stack on a host: `flock` on a lock file of the base dir, held by a command
that lives as long as the SSH session that started it (so a run that dies releases it).

The lock file is in the login user's own folder under /tmp, named by a hash of the base dir: taking
the lock creates nothing in the base dir, so a run stopped by bad input leaves the host as it was.
/tmp is everyone's: the folder is used only when it is the user's own (a folder, not a link, owned
by the user, mode 0700), so another user cannot plant a link there for devkit to write through;
the holder's line is written to a new file and renamed over the old one, never through a link."""

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
NOT_OWN = 76  # the exit code when the lock folder is not the user's own
THEN_SECONDS = 120  # what the command run with the lock may take on top of the wait


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


_OWN = sh('[ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ] && [ "$(stat -c %a -- "$d")" = 700 ]')


def _own_folder() -> Command:
    """Shell that makes the lock folder $d (0700) when there is none, then exits NOT_OWN, saying
    whose it is, unless it is the user's own."""
    return sh(
        '{ { [ -e "$d" ] || [ -L "$d" ] || mkdir -m 0700 -- "$d" 2>/dev/null; };',
        _OWN,
        '|| { printf "%s\\n" "$d ($(stat -c "owner %U, mode %a, %F" -- "$d" 2>&1))" >&2; exit',
        str(NOT_OWN),
        "; }; }",
    )


def remove(base: str) -> Command:
    """Take the base dir's lock file away (teardown --purge), and the folder once it is empty
    (only in the user's own folder)."""
    return sh(
        _lock_file(base),
        "&& {",
        _OWN,
        '&& { rm -f -- "$f" "$f.holder"; rmdir -- "$d" 2>/dev/null; }; true; }',
    )


def command(base: str, holder: str, wait: int = WAIT, then: Command | None = None) -> Command:
    # the holder's line goes to a new file ($$: this shell's; `set -C` refuses one that exists)
    # renamed over the old: a link at "$0.holder" is replaced, never written through. `then` (a
    # run's first look) runs once the lock is held, in the same round trip: its output comes
    # first, then a line break and the ready line
    first = ("(", then, "); echo;") if then is not None else ()
    inner = sh(
        't="$0.holder.$$"; rm -f -- "$t"; ( set -C; printf "%s\\n"',
        q(holder),
        '>"$t" ) && mv -f -- "$t" "$0.holder";',
        *first,
        "echo",
        READY,
        "; cat >/dev/null",
    )
    return sh(
        _lock_file(base),
        "&&",
        _own_folder(),
        "&& flock -w",
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


def acquire(conn: Connection, base: str, wait: int = WAIT, then: Command | None = None) -> Held:
    """The base dir's lock, held until release(); with `then` run once it is held, its output in
    the Held's `said` (a compact JSON answer: no line break of its own)."""
    cmd = command(base, describe_me(), wait, then)
    ready, more = (f"\n{READY}\n", THEN_SECONDS) if then is not None else (READY, 0)
    try:
        return conn.hold(cmd, "lock", ready, wait + 30 + more)
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
        if exc.rc == NOT_OWN:
            where = (exc.stderr_tail.strip().splitlines() or ["/tmp/devkit-locks-UID"])[-1]
            folder = where.split(" (", 1)[0]
            raise RemoteError(
                conn.name,
                "lock",
                f"the lock folder {where} is not a folder of the login user's own (0700): "
                "another user may have made it to have devkit write through it; nothing was changed",
                hint=f"Look at it (ls -la {folder}), remove it (rm -rf {folder}) and run again: "
                "devkit makes it anew.",
            ) from None
        raise
