"""`devkit sync --watch`: each settled save in the local clone pushed to the host's checkout over the
connection devkit already has, the host's watcher restarting what it changes.

The saves are seen here by the same watcher the host runs (onhost/edit/watch.py: inotify through
ctypes, else polling), over the same paths (the stack's [edit] group as provisioned). A push is
what `devkit sync` does, without its restart: the same never-overwrite rule (a push that would
overwrite an edit made on the host is refused, nothing changes, and the next save tries again),
and the host's watcher (the stack's, or one run for as long as this runs) restarts what changed;
its lines are shown here as it writes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devkit.errors import DevkitError, RemoteError
from devkit.provision.editloop.actions import Place
from devkit.provision.kinds import edit as edit_kind
from devkit.provision.onhost.edit.rules import all_patterns, roots
from devkit.provision.onhost.edit.watch import Inotify, Poll
from devkit.provision.ssh.command import q, sh
from devkit.provision.transfer import gitpush

Say = Callable[[str], None]
FOLLOW_SOON = 10.0  # seconds the host's watcher log is looked at often after a push
FOLLOW_LATE = 2.0  # then every this many seconds, until the watcher says what it did,
FOLLOW_MAX = 600.0  # for at most this long


def local_watcher(repo: Path, under: list[str]) -> Any:
    try:
        return Inotify(str(repo), under)
    except (OSError, AttributeError):
        return Poll(str(repo), under)


class WatcherLog:
    """The host watcher's log, read from where it ended at the last look (one command a look)."""

    def __init__(self, place: Place) -> None:
        self.place, self.path = place, place.layout.log(edit_kind.WATCHER)
        self.offset = self._size()

    def _size(self) -> int:
        out = self.place.conn.run(
            sh("stat -c %s --", q(self.path), "2>/dev/null || echo 0"), "watch", check=False
        )
        text = out.stdout.strip()
        return int(text) if text.isdigit() else 0

    def new_lines(self) -> list[str]:
        cmd = sh("tail -c", f"+{self.offset + 1}", "--", q(self.path), "2>/dev/null")
        data = self.place.conn.run(cmd, "watch", check=False).stdout
        done = data[: data.rfind("\n") + 1]  # whole lines only
        self.offset += len(done.encode())
        # without the watcher's own time stamp (HH:MM:SS)
        return [ln[9:] if ln[2:3] == ":" and ln[5:6] == ":" else ln for ln in done.splitlines()]


def push_once(place: Place, repo: Path, req: dict[str, Any], say: Say) -> bool:
    """One push without a restart; False when it was refused (said why)."""
    try:
        result = gitpush.push(place.conn, repo, find=req, host=place.host, restart=False)
    except gitpush.SyncRefused as exc:
        lines = exc.message.splitlines()
        lines[0] = lines[0].removeprefix(f"{place.host}: ")
        for line in [*lines, f"    hint: {exc.hint}"]:
            say(line)
        say("the next save tries again")
        return False
    for line in gitpush.describe(result, place.host):
        say(line)
    return bool(result.changed)


def follow(log: WatcherLog, say: Say, watcher: Any) -> bool:
    """The watcher's lines for what the push changed, once it wrote them (looked for often at
    first, then every FOLLOW_LATE seconds, for as long as a restart takes); True when a new save
    came first: it is pushed first, the watcher's lines come after it."""
    began = time.monotonic()
    while time.monotonic() - began < FOLLOW_MAX:
        lines = log.new_lines()
        if lines:
            time.sleep(0.2)  # the rest of the same report
            for line in lines + log.new_lines():
                if not line.startswith("watching "):
                    say(line)
            return False
        late = time.monotonic() - began > FOLLOW_SOON
        if watcher.wait(FOLLOW_LATE if late else 0.3):
            return True
    return False


def run(place: Place, repo: Path, req: dict[str, Any], say: Say) -> None:
    """Push each settled save until Ctrl-C (KeyboardInterrupt, for the caller to catch)."""
    rules = place.rules
    under = roots(all_patterns(rules))
    debounce = float(rules.get("debounce") or 0.2)
    watcher = local_watcher(repo, under)
    say(
        f"watching {', '.join(under)} in {repo} ({watcher.how}): each save is pushed to "
        f"{place.host}:{rules['checkout']}, and {place.host}'s watcher restarts what it changes "
        "(Ctrl-C stops)"
    )
    log = WatcherLog(place)
    pending = True  # the state as it is now goes first
    while True:
        if not pending and not watcher.wait(None):
            continue
        settle = time.monotonic() + 5.0
        while watcher.wait(debounce) and time.monotonic() < settle:
            pass
        pending = False
        try:
            if push_once(place, repo, req, say):
                pending = follow(log, say, watcher)
        except (DevkitError, RemoteError) as exc:
            say(f"the push failed: {exc}")
            say("the next save tries again")
