"""The services' side, through the stack's supervisord: when each process started, and a
restart that stops what changed and waits for each to pass its health check (or crash)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from typing import Any

from devkit.provision.onhost.edit import launch
from devkit.provision.onhost.edit.launch import FINISHING
from devkit.provision.onhost.edit.procs import (
    catches,
    children_of,
    described,
    listening,
    started_at,
    tree,
    unshared,
)

UP = ("RUNNING", "STARTING", "BACKOFF")


HEALTH_TIMEOUT = 120.0


def supervisor(sock_path: str) -> Any:
    import http.client
    import xmlrpc.client

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(30)
            self.sock.connect(sock_path)

    class Transport(xmlrpc.client.Transport):
        def make_connection(self, host: Any) -> Any:
            return Conn("localhost")

    return xmlrpc.client.ServerProxy("http://localhost", transport=Transport()).supervisor


def process_starts(
    infos: list[dict[str, Any]], base: str = ""
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """service -> when the process serving it started (running or crashed), service -> when it
    was stopped on purpose, and service -> pid. A service run by devkit's launcher is the child
    that serves (launch.py), not the launcher."""
    starts: dict[str, float] = {}
    stops: dict[str, float] = {}
    pids = {}
    for p in infos:
        if p["statename"] == "STOPPED":
            stops[p["name"]] = float(p.get("stop") or 0)
            continue
        pid = int(p.get("pid") or 0)
        rec = launch.serving(base, p["name"], pid) if base and pid else None
        if rec is not None:
            starts[p["name"]], pids[p["name"]] = float(rec["started"]), int(rec["pid"])
            continue
        t = started_at(pid) if pid else None
        starts[p["name"]] = t if t is not None else float(p.get("start") or 0)
        pids[p["name"]] = pid
    return starts, stops, pids


def _tail(path: str, n: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
    except OSError:
        return ""


def _server(base: str, name: str, pid: int) -> int:
    """The process that serves for supervisord's process pid: the launcher's child, or pid."""
    rec = launch.serving(base, name, pid) if base and pid else None
    return int(rec["pid"]) if rec else pid


def stop_all(rpc: Any, names: list[str], base: str = "") -> None:
    """Stop every one of names and wait until they are down. A server with workers is down when
    its workers are: its main process is killed once it has outlived them by FINISHING."""
    infos = {p["name"]: p for p in rpc.getAllProcessInfo()}
    workers = {}
    for n in names:
        pid = _server(base, n, int(infos.get(n, {}).get("pid") or 0))
        if pid:
            workers[n] = (pid, children_of(pid))
    for n in reversed(names):
        try:
            rpc.stopProcess(n, False)
        except Exception:
            pass  # not running: nothing to stop
    alone: dict[str, float] = {}  # service -> since when its main process has no workers left
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {p["name"]: p["statename"] for p in rpc.getAllProcessInfo()}
        busy = [n for n in names if states.get(n) in ("RUNNING", "STARTING", "BACKOFF", "STOPPING")]
        if not busy:
            break
        for n in busy:
            pid, kids = workers.get(n, (0, set()))
            if not kids or states[n] != "STOPPING" or children_of(pid) & kids:
                continue
            since = alone.setdefault(n, time.monotonic())
            if time.monotonic() - since >= FINISHING:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass  # it ended on its own meanwhile
        time.sleep(0.02)


def _passes(check: str, base: str) -> bool:
    try:
        rc = subprocess.run(
            ["sh", "-c", check],
            cwd=base,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
        ).returncode
    except subprocess.TimeoutExpired:
        return False
    return rc == 0


def how(
    infos: dict[str, dict[str, Any]],
    name: str,
    base: str,
    overlap: dict[str, int],
    stop_first: dict[str, str],
) -> str:
    """Why the service is stopped before its new process starts ("" when the two overlap)."""
    if name in stop_first:
        return stop_first[name]
    port = overlap.get(name)
    if not port:
        return "the stack's [edit.overlap] names no port of it"
    pid = int(infos.get(name, {}).get("pid") or 0)
    if infos.get(name, {}).get("statename") != "RUNNING" or not pid:
        return "it is not running"
    if launch.serving(base, name, pid) is None:
        return "it does not run under devkit's launcher (provision the stack again)"
    return unshared(port)


def _settled(path: str) -> int:
    """The log's size once it stopped growing (for 0.2 s, at most 1 s): supervisord writes a
    crash's last words a moment later. -1: there is no log."""
    size, settled = -1, time.monotonic() + 1.0
    while time.monotonic() < settled:
        try:
            now = os.path.getsize(path)
        except OSError:
            return -1
        if now == size:
            break
        size = now
        time.sleep(0.2)
    return size


def _log_since(path: str, offset: int) -> str:
    """The last lines written to the log since offset, once it stopped growing."""
    size = _settled(path)
    if size < 0:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, size - 65536))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = text.splitlines()
    return "\n".join(traceback_in(lines) or lines[-20:])


_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
# how a traceback's last line starts: the exception's name, then ":" or the line's end
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(:|$)")


def traceback_in(lines: list[str], most: int = 80) -> list[str]:
    """The first Python traceback among the lines, up to its exception line (a chained one
    included), or []. The old process shares the log and writes its own lines the while, even
    between two lines of the traceback: a line that is neither indented nor an exception's is
    its, and left out (pure)."""
    start = next((i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent")), -1)
    if start < 0:
        return []
    found = [lines[start]]
    for i in range(start + 1, len(lines)):
        ln = lines[i]
        if (
            not ln.strip()
            or ln[0].isspace()
            or ln.startswith(("Traceback (most recent", *_CHAINED))
        ):
            found.append(ln)
            continue
        if not _EXCEPTION.match(ln):
            continue  # the other process's line
        found.append(ln)
        later = next((x for x in lines[i + 1 :] if x.strip() and not x[0].isspace()), "")
        if not later.startswith(_CHAINED):  # the exception line, and no chained one follows
            break
    return found if len(found) <= most else [found[0], "...", *found[-(most - 2) :]]


def handover(
    base: str, name: str, port: int, check: str, old: int, changed: list[str]
) -> dict[str, Any]:
    """Start the service's new process beside the serving one (its launcher does), wait until
    the new one listens on the port and the health check passes, then retire the old one. A new
    process that crashes is retired instead: the old one keeps serving. One that runs but never
    gets there is looked into (its processes and their stacks, into its log) and started once
    more, as a person would; twice, it is given up on."""
    log = os.path.join(base, "logs", name + ".log")
    began = time.monotonic()
    result: dict[str, Any] = {"service": name, "ok": False, "how": "overlapped", "old": old}
    kept = f"the old one (pid {old}) keeps serving"
    for attempt in (1, 2):
        try:
            offset = os.path.getsize(log)
        except OSError:
            offset = 0
        try:
            answer = launch.ask(base, name, {"do": "spawn", "changed": changed})
        except OSError as exc:
            answer = {"error": f"its launcher does not answer ({exc})"}
        pid = int(answer.get("pid") or 0)
        if not pid:
            why = answer.get("error") or "its launcher did not start it"
            took = round(time.monotonic() - began, 3)
            return {**result, "seconds": took, "error": f"could not be started: {why}; {kept}"}
        spawned = time.monotonic()
        while True:
            took = round(time.monotonic() - began, 3)
            if not _running(base, name, pid):
                code = _exit_code(base, name, pid)
                return {
                    **result,
                    "seconds": took,
                    "error": f"crashed on start (exit code {code}); {kept}; "
                    "the last lines of its log:",
                    "log": _log_since(log, offset),
                }
            if listening(tree(pid), port) and (not check or _passes(check, base)):
                try:
                    launch.ask(base, name, {"do": "commit", "pid": pid})
                except OSError as exc:
                    why = f"its launcher does not answer ({exc})"
                    return {**result, "seconds": took, "error": f"could not take over: {why}"}
                return {
                    **result,
                    "ok": True,
                    "seconds": took,
                    "pid": pid,
                    "served_at": time.time(),
                    "warm": bool(answer.get("warm")),
                    **({"started": attempt} if attempt > 1 else {}),
                }
            if time.monotonic() - spawned > HEALTH_TIMEOUT:
                break
            time.sleep(0.05)
        late = f"{name}'s new process was not serving {HEALTH_TIMEOUT:.0f} s after it started"
        look_into(log, pid, late + ("; starting another" if attempt == 1 else "; giving up"))
        _abort(base, name, pid)
    return {
        **result,
        "seconds": round(time.monotonic() - began, 3),
        "error": f"was not serving {HEALTH_TIMEOUT:.0f} s after it started, started twice, and "
        f"was stopped; {kept}; the last lines of its log:",
        "log": _log_since(log, offset),
    }


def look_into(log: str, pid: int, why: str) -> None:
    """A note in the service's log of why devkit acts on a start that hangs, with what each of its
    processes does; then each one that can says where its threads are (record.py's SIGUSR2)."""
    pids = sorted(tree(pid))
    lines = [f"devkit: {why}. Its processes:", *(f"devkit:   {described(p)}" for p in pids)]
    try:
        with open(log, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    except OSError:
        return
    asked = [p for p in pids if catches(p, signal.SIGUSR2)]
    for p in asked:
        try:
            os.kill(p, signal.SIGUSR2)
        except OSError:
            pass
    if asked:
        _settled(log)  # their stacks written


def _running(base: str, name: str, pid: int) -> bool:
    try:
        child = launch.ask(base, name, {"do": "status"}).get("children", {}).get(str(pid))
    except OSError:
        return False
    return bool(child) and child.get("exit") is None


def _exit_code(base: str, name: str, pid: int) -> str:
    try:
        child = launch.ask(base, name, {"do": "status"}).get("children", {}).get(str(pid)) or {}
    except OSError:
        return "unknown"
    return str(child.get("exit"))


def _abort(base: str, name: str, pid: int) -> None:
    try:
        launch.ask(base, name, {"do": "abort", "pid": pid})
    except OSError:
        pass  # its launcher is gone, and the process with it


def restart(
    rpc: Any,
    names: list[str],
    health: dict[str, str],
    base: str,
    overlap: dict[str, int] | None = None,
    stop_first: dict[str, str] | None = None,
    changed: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Restart every one of names; one result per service. A service whose port its listeners
    share (`overlap`) gets its new process beside the old one (handover); the others are
    stopped, then started in order, each waited for until it passes its health check (or
    crashes). Both kinds go at once."""
    infos = {p["name"]: p for p in rpc.getAllProcessInfo()}
    changed = changed or {}
    why = {n: how(infos, n, base, overlap or {}, stop_first or {}) for n in names}
    over = [n for n in names if not why[n]]
    out: dict[str, dict[str, Any]] = {}

    def go(name: str) -> None:
        old = _server(base, name, int(infos[name].get("pid") or 0))
        port = (overlap or {})[name]
        out[name] = handover(base, name, port, health.get(name, ""), old, changed.get(name, []))

    threads = [threading.Thread(target=go, args=(n,), daemon=True) for n in over]
    for t in threads:
        t.start()
    rest = [n for n in names if why[n]]
    if rest:
        for r in stop_then_start(rpc, rest, health, base):
            out[r["service"]] = {**r, "how": "stopped first", "why": why[r["service"]]}
    for t in threads:
        t.join()
    return [out[n] for n in names]


def stop_then_start(
    rpc: Any, names: list[str], health: dict[str, str], base: str, attempt: int = 1
) -> list[dict[str, Any]]:
    """Stop every one of names, start them in order, and wait until each passes its health check
    (or crashes): one result per service. One that runs but is not healthy in time is looked
    into and started once more (as handover does)."""
    stop_all(rpc, names, base)
    began = {}
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        began[n] = time.monotonic()
        try:
            rpc.startProcess(n, False)
        except Exception as exc:  # a spawn error (its command is gone): that service's failure
            out[n] = {"service": n, "ok": False, "seconds": 0.0, "error": f"cannot start it: {exc}"}
    healthy: dict[str, float] = {}

    def probe(name: str, check: str) -> None:
        while name not in healthy and time.monotonic() - began[name] < HEALTH_TIMEOUT:
            if _passes(check, base):
                healthy[name] = time.monotonic()
                return
            time.sleep(0.05)

    threads = [
        threading.Thread(target=probe, args=(n, health[n]), daemon=True)
        for n in names
        if health.get(n)
    ]
    for t in threads:
        t.start()
    first_pid: dict[str, int] = {}
    while len(out) < len(names):
        infos = {p["name"]: p for p in rpc.getAllProcessInfo()}
        for n in names:
            if n in out:
                continue
            p = infos.get(n, {})
            state, pid = p.get("statename", "?"), int(p.get("pid") or 0)
            if pid and n not in first_pid:
                first_pid[n] = pid
            crashed = state in ("FATAL", "BACKOFF", "EXITED", "STOPPED") or (
                pid and first_pid.get(n) not in (None, pid)
            )
            ok = n in healthy if health.get(n) else state == "RUNNING"
            took = (healthy.get(n) or time.monotonic()) - began[n]
            if ok and not crashed:
                out[n] = {
                    "service": n,
                    "ok": True,
                    "seconds": round(took, 3),
                    "pid": _server(base, n, pid),
                    "served_at": time.time()
                    - (time.monotonic() - healthy.get(n, time.monotonic())),
                }
            elif crashed:
                out[n] = {
                    "service": n,
                    "ok": False,
                    "seconds": round(took, 3),
                    "error": f"it crashed on start ({state}); the last lines of its log:",
                    "log": _tail(os.path.join(base, "logs", n + ".log")),
                }
            elif took > HEALTH_TIMEOUT:
                late = f"{n} was not healthy {HEALTH_TIMEOUT:.0f} s after it started"
                log = os.path.join(base, "logs", n + ".log")
                if pid:
                    look_into(log, pid, late + ("; starting it again" if attempt == 1 else ""))
                twice = ", started twice" if attempt > 1 else ""
                out[n] = {
                    "service": n,
                    "ok": False,
                    "hung": attempt == 1,
                    "seconds": round(took, 3),
                    "error": f"not healthy after {HEALTH_TIMEOUT:.0f} s{twice}; "
                    "the last lines of its log:",
                    "log": _tail(log),
                }
        if len(out) < len(names):
            time.sleep(0.02)
    hung = [n for n in names if out[n].pop("hung", False)]
    if hung:
        for r in stop_then_start(rpc, hung, health, base, attempt + 1):
            out[r["service"]] = {**r, "started": 2} if r["ok"] else r
    return [out[n] for n in names]
