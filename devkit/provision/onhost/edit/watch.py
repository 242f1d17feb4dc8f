"""The watcher (a supervisord program): saves under the watched roots from inotify (through
ctypes; no package needed), else by polling the files' times; each settled save is one look."""

from __future__ import annotations

import os
import re
import select
import struct
import sys
import time
from typing import Any

from devkit.provision.onhost.edit.checkout import IGNORED_DIRS
from devkit.provision.onhost.edit.look import Lock, load, once
from devkit.provision.onhost.edit.report import describe
from devkit.provision.onhost.edit.rules import all_patterns, roots

IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x4, 0x8, 0x40, 0x80


IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800


IN_Q_OVERFLOW, IN_IGNORED, IN_ONLYDIR, IN_ISDIR = 0x4000, 0x8000, 0x01000000, 0x40000000


MASK = (
    IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)


_NOISE = re.compile(r"(\.py[co]|~|\.sw[a-z]|\.tmp|^4913|^\.#.*)$")


def noise(name: str) -> bool:
    """Files an editor or Python writes that are never a save of the code (byte code, swap files)."""
    return bool(_NOISE.search(name))


class Inotify:
    """Saves under the roots, from the kernel (inotify through ctypes: no package)."""

    how = "inotify"

    def __init__(self, top: str, under: list[str]) -> None:
        import ctypes
        import ctypes.util

        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.top, self.under, self.wds = top, under, {}
        self.missing: list[str] = []
        self.rescan()

    def _add(self, path: str) -> None:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), MASK)
        if wd < 0:
            import ctypes

            err = ctypes.get_errno()
            if err in (2, 20):  # gone, or not a folder: nothing to watch
                return
            raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
        self.wds[wd] = path

    def _tree(self, path: str) -> None:
        for dirpath, dirnames, _ in os.walk(path):
            dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
            self._add(dirpath)

    def rescan(self) -> None:
        self.missing = []
        for r in self.under:
            p = os.path.normpath(os.path.join(self.top, r))
            if os.path.isdir(p):
                self._tree(p)
            elif os.path.exists(p):
                self._add(os.path.dirname(p))
            else:
                self.missing.append(p)

    def count(self) -> int:
        return len(self.wds)

    def wait(self, timeout: float | None) -> bool:
        """True when something that may be a save happened within timeout (None: forever)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else max(0.0, end - time.monotonic())
            if self.missing and (left is None or left > 2.0):
                left = 2.0  # a root that does not exist yet: look again now and then
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                if self.missing and any(os.path.exists(p) for p in self.missing):
                    self.rescan()
                    return True
                if end is not None and time.monotonic() >= end:
                    return False
                continue
            if self._read():
                return True

    def _read(self) -> bool:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        hit, i = False, 0
        while i + 16 <= len(data):
            wd, mask, _cookie, size = struct.unpack_from("iIII", data, i)
            name = data[i + 16 : i + 16 + size].rstrip(b"\0").decode("utf-8", "surrogateescape")
            i += 16 + size
            if mask & IN_Q_OVERFLOW:
                hit = True
                continue
            if mask & IN_IGNORED:
                self.wds.pop(wd, None)
                continue
            parent = self.wds.get(wd)
            if mask & IN_ISDIR:
                if name in IGNORED_DIRS:
                    continue
                if mask & (IN_CREATE | IN_MOVED_TO) and parent:
                    self._tree(os.path.join(parent, name))
                hit = True
            elif not noise(name):
                hit = True
        return hit


class Poll:
    """Saves under the roots by polling the files' times (where inotify cannot be had)."""

    how = "polling"

    def __init__(self, top: str, under: list[str], every: float = 0.5) -> None:
        self.top, self.under, self.every = top, under, every
        self.seen = self.signature()

    def signature(self) -> tuple[int, int, int]:
        """The newest file (written, or renamed: ctime), and how many files and folders there are
        (a deletion); byte code, editor files and cache folders left out."""
        newest, files, folders = 0, 0, 0
        for r in self.under:
            p = os.path.normpath(os.path.join(self.top, r))
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
                folders += 1
                for name in filenames:
                    if noise(name):
                        continue
                    try:
                        st = os.lstat(os.path.join(dirpath, name))
                    except OSError:
                        continue
                    newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
                    files += 1
        return newest, files, folders

    def count(self) -> int:
        return self.seen[1]

    def wait(self, timeout: float | None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while end is None or time.monotonic() < end:
            time.sleep(
                self.every if end is None else min(self.every, max(0.0, end - time.monotonic()))
            )
            now = self.signature()
            if now != self.seen:
                self.seen = now
                return True
        return False


def say(line: str) -> None:
    sys.stdout.write(time.strftime("%H:%M:%S ") + line + "\n")
    sys.stdout.flush()


def watch(rules_path: str) -> int:
    rules = load(rules_path)
    top, under = rules["checkout"], roots(all_patterns(rules))
    debounce = float(rules.get("debounce") or 0.2)
    try:
        if os.environ.get("DEVKIT_WATCH_POLL"):
            raise OSError("polling asked for")
        w: Any = Inotify(top, under)
    except (OSError, AttributeError) as exc:
        say(f"inotify is not available ({exc}): polling every 0.5 s instead")
        w = Poll(top, under)
    say(
        f"watching {', '.join(under)} in {top} ({w.how}, {w.count()} folders or files); "
        f"a save restarts: "
        + "; ".join(f"{s} <- {', '.join(p)}" for s, p in rules["services"].items())
    )
    quiet: dict[str, float] = {}
    host = rules.get("host", "HOST")
    while True:
        if not w.wait(None):
            continue
        # debounced: act once the saves have settled (an editor writes, renames, touches)
        settle = time.monotonic() + 5.0
        while w.wait(debounce) and time.monotonic() < settle:
            pass
        with Lock(rules["base"]):
            report = once(rules, quiet=quiet)
        quiet = dict(report.get("told") or {})
        if any(report.get(k) for k in ("restarted", "kept", "stopped", "notes", "error")):
            for line in describe(report, host):
                say(line)
