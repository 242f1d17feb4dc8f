"""The launcher: supervisord runs it, and it runs the service as its child, so a restart can start
the new process beside the old one and retire the old one only once the new one serves.

    python3 -I -S devkit-edit.py launch SERVICE RULES -- COMMAND...

It answers on a Unix socket, `<base>/run/serving/SERVICE.sock`, one JSON request per connection:
`spawn` (a new child beside the serving one: its pid), `status` (the serving pid, and each child's
exit code once it ended), `commit PID` (PID serves from now on: the others are retired) and
`abort PID` (PID is retired). `<base>/run/serving/SERVICE.json` says which child serves (its pid
and start), for the edit loop and `devkit status`. Retiring a child is what supervisord's stop
does to a process group: TERM to it and every process below it, then KILL once the stop wait is
over; a main process that outlives its workers by FINISHING is killed at once (Backend.AI's
manager otherwise spends seconds cleaning up after them).

The launcher exits when the serving child does (supervisord then restarts the program, as it
would the service), and on supervisord's stop it waits for its children to end. It is a child
subreaper: a worker left behind by a retired main process comes back to it and is ended too. Each
child records the checkout modules it imported (imports.py, through the sitecustomize next to the
rules), for the restart decisions.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from devkit.provision.onhost.edit.paths import (
    control_path,
    imports_prefix,
    serving_dir,
    site_dir,
    state_path,
)
from devkit.provision.onhost.edit.procs import alive, children_of, started_at, tree
from devkit.provision.onhost.edit.warm import Warm

FINISHING = 0.3  # seconds a main process may outlive its workers while it is being retired


def _short(path: str) -> tuple[str, int]:
    """A path a Unix socket can take whatever the base dir's length (sun_path holds 108 bytes):
    through the folder's descriptor. The caller closes the descriptor."""
    fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}", fd


def _line(sock: socket.socket) -> bytes:
    """What the other end sends up to its newline (or until it closes): one JSON message."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def ask(base: str, service: str, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """One request to a service's launcher; raises OSError when none answers."""
    path, fd = _short(control_path(base, service))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(json.dumps(request).encode() + b"\n")
            data = _line(s)
    finally:
        os.close(fd)
    try:
        return dict(json.loads(data.decode() or "{}"))
    except ValueError as exc:
        raise OSError(f"the launcher of {service} answered {data[:200]!r}") from exc


def serving(base: str, service: str, supervised: int) -> dict[str, Any] | None:
    """The launcher's record of the child that serves, when the launcher is supervisord's process
    `supervised` (else the record is stale, or the service runs without a launcher)."""
    try:
        with open(state_path(base, service), encoding="utf-8") as f:
            rec = dict(json.load(f))
    except (OSError, ValueError):
        return None
    if supervised and rec.get("launcher") == supervised and alive(int(rec.get("pid") or 0)):
        return rec
    return None


def _write(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _subreaper() -> None:
    """Orphans below the launcher come back to it (prctl PR_SET_CHILD_SUBREAPER), not to init."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # then a retired worker goes to init, as it would under supervisord alone


class Launcher:
    def __init__(self, service: str, rules: dict[str, Any], argv: list[str]) -> None:
        self.service, self.argv = service, argv
        self.base, self.checkout = str(rules["base"]), str(rules.get("checkout") or "")
        self.stopwait = float((rules.get("stopwait") or {}).get(service) or 20)
        self.site = site_dir(self.base)
        self.children: dict[int, dict[str, Any]] = {}  # pid -> {"started", "exit"}
        self.retiring: dict[int, dict[str, Any]] = {}  # pid -> {"since", "workers", "tree"}
        self.serving = 0
        self.stopping = False
        warm = service in (rules.get("warm") or ())
        self.warm = Warm(self.base, service, self.checkout, argv) if warm else None

    # --- children ---------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DEVKIT_IMPORTS"] = imports_prefix(self.base, self.service)
        env["DEVKIT_IMPORTS_ROOT"] = self.checkout
        if os.path.isdir(self.site):  # last: the project's own sitecustomize comes first
            path = env.get("PYTHONPATH", "")
            env["PYTHONPATH"] = f"{path}:{self.site}" if path else self.site
        return env

    def spawn(self, changed: list[str] | None = None) -> tuple[int, bool]:
        """A new child, and whether it came warm: forked from the service's warm interpreter
        when there is one for these changes, else started (posix_spawn, not subprocess: the
        launcher reaps its children itself)."""
        pid = self.warm.fork(changed or []) if self.warm else 0
        warm = bool(pid)
        if not pid:
            stop = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD)
            pid = os.posix_spawnp(self.argv[0], self.argv, self._env(), setsigdef=stop)
        self.children[pid] = {"started": started_at(pid) or time.time(), "exit": None, "warm": warm}
        return pid, warm

    def commit(self, pid: int) -> list[int]:
        if pid not in self.children or self.children[pid]["exit"] is not None:
            return []
        self.serving = pid
        self._record()
        old = [c for c, st in self.children.items() if c != pid and st["exit"] is None]
        for c in old:
            self.retire(c)
        return old

    def retire(self, pid: int, signum: int = signal.SIGTERM, finishing: bool = True) -> None:
        """Signal the child and everything below it (what supervisord's stop does to a process
        group; signum 0: they had the signal already); `finishing`: a main process that outlives
        its workers is not waited for."""
        if pid in self.retiring or self.children.get(pid, {}).get("exit") is not None:
            return
        procs = tree(pid)
        self.retiring[pid] = {
            "since": time.monotonic(),
            "workers": children_of(pid) if finishing else set(),
            "tree": procs,
            "alone": 0.0,
        }
        for p in procs if signum else ():
            _kill(p, signum)

    def _tend(self) -> None:
        """Retired children that take too long: a main process alone for FINISHING, or anything
        past the stop wait, is killed."""
        now = time.monotonic()
        for pid, r in list(self.retiring.items()):
            if self.children.get(pid, {}).get("exit") is not None:
                for p in r["tree"] - {pid}:  # what it left behind, if anything is still there
                    if alive(p):
                        _kill(p, signal.SIGKILL)
                del self.retiring[pid]
                continue
            if now - r["since"] > self.stopwait:
                for p in tree(pid) | r["tree"]:
                    _kill(p, signal.SIGKILL)
                continue
            if r["workers"] and not (children_of(pid) & r["workers"]):
                r["alone"] = r["alone"] or now
                if now - r["alone"] >= FINISHING:
                    _kill(pid, signal.SIGKILL)

    def _reap(self) -> int | None:
        """Collect ended children; the serving one's exit status when it ended."""
        ended = None
        tree_of = {pid: r["tree"] for pid, r in self.retiring.items()}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return ended
            if pid == 0:
                return ended
            if self.warm and self.warm.ended(pid):
                continue
            if pid not in self.children:
                continue  # an orphan that came back to the subreaper
            code = os.waitstatus_to_exitcode(status)
            self.children[pid]["exit"] = code
            if pid == self.serving:
                ended = code
            self._forget_imports(tree_of.get(pid, set()) | {pid})

    def _forget_imports(self, pids: set[int] | None = None) -> None:
        """Drop the import records of these processes (None: of every process that is gone)."""
        prefix = imports_prefix(self.base, self.service)
        folder, head = os.path.split(prefix)
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            pid = name[len(head) + 1 : -len(".json")]
            if not (name.startswith(head + ".") and name.endswith(".json") and pid.isdigit()):
                continue
            if (int(pid) in pids) if pids is not None else not alive(int(pid)):
                try:
                    os.unlink(os.path.join(folder, name))
                except OSError:
                    pass

    def _record(self) -> None:
        st = self.children.get(self.serving, {})
        _write(
            state_path(self.base, self.service),
            {"launcher": os.getpid(), "pid": self.serving, "started": st.get("started", 0.0)},
        )

    # --- the control socket ------------------------------------------------------------------

    def answer(self, req: dict[str, Any]) -> dict[str, Any]:
        do, pid = req.get("do"), int(req.get("pid") or 0)
        if self.stopping:
            return {"error": "the service is stopping"}
        if do == "spawn":
            try:
                pid, warm = self.spawn(list(req.get("changed") or ()))
                return {"pid": pid, "warm": warm}
            except OSError as exc:
                return {"error": f"cannot run {self.argv[0]}: {exc.strerror}"}
        if do == "commit":
            if pid not in self.children or self.children[pid]["exit"] is not None:
                return {"error": f"process {pid} is not running"}
            return {"retired": self.commit(pid)}
        if do == "abort":
            if pid != self.serving:
                self.retire(pid)
            return {"retired": [pid]}
        if do == "status":
            w = self.warm
            return {
                "serving": self.serving,
                "children": {str(c): st for c, st in self.children.items()},
                "warm": {"pid": w.pid, "ready": w.loaded is not None} if w else None,
            }
        return {"error": f"unknown request {do!r}"}

    def _serve_one(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                data = _line(conn)
                try:
                    reply = self.answer(json.loads(data.decode() or "{}"))
                except ValueError:
                    reply = {"error": "not JSON"}
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass

    # --- the loop ------------------------------------------------------------------------------

    def _write_site(self) -> None:
        """record.py as the children's sitecustomize (this launcher's own copy of it)."""
        from devkit.provision.onhost.edit import record

        source = record.__loader__.get_source(record.__name__)  # type: ignore[union-attr]
        os.makedirs(self.site, mode=0o750, exist_ok=True)
        path = os.path.join(self.site, "sitecustomize.py")
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == source:
                    return
        except OSError:
            pass
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(source or "")
        os.replace(tmp, path)

    def run(self) -> int:
        os.makedirs(serving_dir(self.base), mode=0o750, exist_ok=True)
        self._forget_imports()  # of processes that ended before this launcher
        try:
            self._write_site()
        except OSError as exc:
            sys.stderr.write(f"devkit launcher: imports are not recorded: {exc}\n")
        _subreaper()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        stop_sig: list[int] = []

        def on_stop(signum: int, frame: Any) -> None:
            stop_sig.append(signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, on_stop)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        listener = self._listen()
        try:
            self.serving, _ = self.spawn()
        except OSError as exc:
            sys.stderr.write(f"devkit launcher: cannot run {self.argv[0]}: {exc.strerror}\n")
            listener.close()
            return 127
        self._record()
        code = 0
        try:
            while True:
                timeout = 0.05 if self.retiring or self.stopping else None
                if self.warm is not None and not self.warm.pid and not self.stopping:
                    self.warm.build(self.serving, self._env())
                    # until the serving process's imports are recorded and the plan is made
                    timeout = timeout or (0.2 if self.warm.planning else 1.0)
                waiting = [listener, wake_r]
                if self.warm is not None and self.warm.fileno() >= 0:
                    waiting.append(self.warm)
                ready, _, _ = select.select(waiting, [], [], timeout)
                if self.warm is not None and self.warm in ready:
                    self.warm.readable()
                if wake_r in ready:
                    try:
                        os.read(wake_r, 4096)
                    except BlockingIOError:
                        pass
                if listener in ready:
                    self._serve_one(listener)
                if stop_sig and not self.stopping:
                    self._stop(stop_sig[0], from_supervisord=True)
                ended = self._reap()
                if ended is not None and not self.stopping:
                    code = ended  # the service ended: so does its launcher (supervisord's turn)
                    self._stop(signal.SIGTERM, from_supervisord=False)
                self._tend()
                if self.stopping and not any(st["exit"] is None for st in self.children.values()):
                    return 0 if stop_sig else (code if code >= 0 else 128 - code)
        finally:
            listener.close()
            for path in (
                control_path(self.base, self.service),
                state_path(self.base, self.service),
            ):
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def _stop(self, signum: int, from_supervisord: bool) -> None:
        """Every child ends, as supervisord's stop would end it: a signal supervisord sent the
        process group reached them already; then the stop wait, then KILL."""
        self.stopping = True
        if self.warm is not None:
            self.warm.stop()
        mine = os.getpgrp()
        for pid, st in self.children.items():
            if st["exit"] is not None:
                continue
            try:
                had_it = from_supervisord and os.getpgid(pid) == mine
            except OSError:
                continue
            self.retire(pid, 0 if had_it else signum, finishing=False)

    def _listen(self) -> socket.socket:
        path = control_path(self.base, self.service)
        try:
            os.unlink(path)
        except OSError:
            pass
        short, fd = _short(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                s.bind(short)
            finally:
                os.umask(old)
        finally:
            os.close(fd)
        s.listen(8)
        s.setblocking(False)
        return s


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass  # gone already


def main(service: str, rules_path: str, argv: list[str]) -> int:
    with open(rules_path, encoding="utf-8") as f:
        rules = json.load(f)
    return Launcher(service, rules, argv).run()
