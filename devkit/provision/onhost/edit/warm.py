"""A service's warm interpreter, as its launcher keeps it (`[edit] warm`): once the serving process
has recorded what it imported, a zygote (zygote.py, in the service's own interpreter) imports it
all but the files being edited (those that differ from the checkout's HEAD, and those of recent
restarts) and every module that imports one of them; a restart then forks the new process from
it. It is used only while none of the checkout files it loaded changed since (their times are
compared at each use); when one did, the restart starts cold and a new zygote leaves that file
out too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time

from devkit.provision.onhost.edit import imports
from devkit.provision.onhost.edit.paths import site_dir, zygote_plan

RETRY = 30.0  # seconds before a zygote that failed is tried again


def _source() -> str:
    from devkit.provision.onhost.edit import zygote

    return str(zygote.__loader__.get_source(zygote.__name__))  # type: ignore[union-attr]


def write_zygote(base: str) -> str:
    """zygote.py beside the launcher's sitecustomize (this launcher's own copy): its path."""
    path = os.path.join(site_dir(base), "devkit_zygote.py")
    source = _source()
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == source:
                return path
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(source)
    os.replace(tmp, path)
    return path


def dirty(checkout: str) -> set[str]:
    """The files of the checkout that differ from its HEAD (tracked or not): being edited."""
    try:
        out = subprocess.run(
            ["git", "-C", checkout, "status", "--porcelain", "-z", "--untracked-files=all"],
            capture_output=True,
            timeout=30,
        ).stdout.decode("utf-8", "surrogateescape")
    except (OSError, subprocess.TimeoutExpired):
        return set()
    entries = out.split("\0")
    return {e[3:] for e in entries if len(e) > 3}


class Warm:
    def __init__(self, base: str, service: str, checkout: str, argv: list[str]) -> None:
        self.base, self.service, self.checkout, self.argv = base, service, checkout, argv
        self.hot: set[str] = set()  # files of recent restarts: left out of the next zygote
        self.pid = 0
        self.sock: socket.socket | None = None
        self.buf = b""
        self.loaded: dict[str, float] | None = None  # set once the zygote is ready
        self.tried = 0.0
        self.ok = len(argv) >= 3 and argv[1] == "-m"  # PYTHON -m MODULE ARGS
        # the plan is made in a thread (parsing thousands of modules' imports takes seconds):
        # the launcher keeps answering meanwhile
        self.planning: threading.Thread | None = None
        self.plan: str = ""  # the plan's path, once made

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def build(self, serving: int, env: dict[str, str]) -> None:
        """Start a zygote for the serving process's imports, once they are recorded (settled) and
        its plan is made (in a thread)."""
        if not self.ok or self.pid:
            return
        if self.planning is not None:
            if self.planning.is_alive():
                return
            self.planning = None
            if self.plan:
                self._spawn(env)
            return
        if time.monotonic() - self.tried < RETRY:
            return
        self.tried, self.plan = time.monotonic(), ""
        args = (serving, set(self.hot))
        self.planning = threading.Thread(target=self._make_plan, args=args, daemon=True)
        self.planning.start()

    def _make_plan(self, serving: int, hot: set[str]) -> None:
        """What the zygote imports: all the serving process did (once its record settled: else
        looked at again soon), but the files being edited and every module that imports one of
        them, and its main module (run as __main__)."""
        rec = imports.recorded(self.base, self.service, serving)
        if rec is None:
            self.tried = time.monotonic() - RETRY + 2.0
            return
        left_out = imports.importers(self.checkout, rec, hot | dirty(self.checkout))
        mods = [m for m in rec["files"].values() if m not in left_out and m != rec["main"]]
        plan = {"modules": [*rec["others"], *mods], "root": self.checkout}
        path = zygote_plan(self.base, self.service)
        try:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(plan, f)
            os.replace(path + ".tmp", path)
        except OSError:
            return
        self.plan = path

    def _spawn(self, env: dict[str, str]) -> None:
        path = self.plan
        mine, theirs = socket.socketpair()
        os.set_inheritable(theirs.fileno(), True)
        argv = [self.argv[0], write_zygote(self.base), str(theirs.fileno()), path, *self.argv[1:]]
        try:
            self.pid = os.posix_spawnp(argv[0], argv, env)
        except OSError:
            mine.close()
            return
        finally:
            theirs.close()
        self.sock, self.buf, self.loaded = mine, b"", None

    def readable(self) -> None:
        """The zygote's words: ready (with the files it loaded), or gone."""
        assert self.sock is not None
        try:
            chunk = self.sock.recv(1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            self.stop()
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            msg = json.loads(line.decode() or "{}")
            if msg.get("ready"):
                self.loaded = {str(k): float(v) for k, v in msg.get("loaded", {}).items()}

    def stale(self) -> set[str]:
        """The files the zygote loaded that changed since."""
        out = set()
        for rel, t in (self.loaded or {}).items():
            try:
                now = os.stat(os.path.join(self.checkout, rel)).st_mtime
            except OSError:
                now = -1.0
            if now != t:
                out.add(rel)
        return out

    def fork(self, changed: list[str]) -> int:
        """A new process forked from the zygote (0 when there is none ready, or it is stale: it
        is then stopped, and the next one leaves those files out)."""
        self.hot |= set(changed)
        if self.loaded is None or self.sock is None:
            return 0
        old = self.stale()
        if old:
            self.hot |= old
            self.stop()
            self.tried = 0.0
            return 0
        try:
            self.sock.settimeout(30)
            self.sock.sendall(b'{"do": "fork"}\n')
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("the zygote is gone")
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\n")
            pid = int(json.loads(line.decode()).get("pid") or 0)
        except (OSError, ValueError):
            self.stop()
            return 0
        finally:
            if self.sock is not None:
                self.sock.settimeout(None)
        return pid

    def ended(self, pid: int) -> bool:
        """Whether the process that ended was the zygote (then there is none now)."""
        if pid and pid == self.pid:
            self.pid = 0
            self.stop()
            return True
        return False

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except OSError:
                pass
        self.loaded = None
