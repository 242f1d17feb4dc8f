"""The services' side, through the stack's supervisord: when each process started, and a
restart that stops what changed and waits for each to pass its health check (or crash)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from typing import Any

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


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def started_at(pid: int) -> float | None:
    """When a process started, to the clock tick (from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - uptime + ticks / _TICKS


def process_starts(
    infos: list[dict[str, Any]],
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """service -> when its process started (running or crashed), service -> when it was stopped
    on purpose, and service -> pid."""
    starts: dict[str, float] = {}
    stops: dict[str, float] = {}
    pids = {}
    for p in infos:
        if p["statename"] == "STOPPED":
            stops[p["name"]] = float(p.get("stop") or 0)
            continue
        t = started_at(p["pid"]) if p.get("pid") else None
        starts[p["name"]] = t if t is not None else float(p.get("start") or 0)
        pids[p["name"]] = int(p.get("pid") or 0)
    return starts, stops, pids


def _tail(path: str, n: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
    except OSError:
        return ""


def children_of(pid: int) -> set[int]:
    """The processes whose parent is pid (from /proc)."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.add(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


# a server's main process that is still there this long after its last worker ended is only
# finishing up (Backend.AI's manager: 1.5-2.5 s of CPU-bound clean-up): a restart ends it
FINISHING = 0.3


def stop_all(rpc: Any, names: list[str]) -> None:
    """Stop every one of names and wait until they are down. A server with workers is down when
    its workers are: its main process is killed once it has outlived them by FINISHING."""
    infos = {p["name"]: p for p in rpc.getAllProcessInfo()}
    workers = {}
    for n in names:
        pid = int(infos.get(n, {}).get("pid") or 0)
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


def restart(rpc: Any, names: list[str], health: dict[str, str], base: str) -> list[dict[str, Any]]:
    """Stop every one of names, start them in order, and wait until each passes its health check
    (or crashes): one result per service."""
    stop_all(rpc, names)
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
            try:
                rc = subprocess.run(
                    ["sh", "-c", check],
                    cwd=base,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=10,
                ).returncode
            except subprocess.TimeoutExpired:
                rc = 124
            if rc == 0:
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
                out[n] = {"service": n, "ok": True, "seconds": round(took, 3), "pid": pid}
            elif crashed:
                out[n] = {
                    "service": n,
                    "ok": False,
                    "seconds": round(took, 3),
                    "error": f"it crashed on start ({state}); the last lines of its log:",
                    "log": _tail(os.path.join(base, "logs", n + ".log")),
                }
            elif took > HEALTH_TIMEOUT:
                out[n] = {
                    "service": n,
                    "ok": False,
                    "seconds": round(took, 3),
                    "error": f"not healthy after {HEALTH_TIMEOUT:.0f} s; the last lines of its log:",
                    "log": _tail(os.path.join(base, "logs", n + ".log")),
                }
        if len(out) < len(names):
            time.sleep(0.02)
    return [out[n] for n in names]
