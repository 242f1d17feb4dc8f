"""The edit loop ON THE HOST: standard library only, no devkit imports (shipped as source).

    python3 -I -S devkit-edit.py changed RULES [--dry-run]   one look (devkit restart --changed, sync)
    python3 -I -S devkit-edit.py watch RULES                  the watcher (a supervisord program)

RULES is the stack's `[edit]` group as provisioned (JSON). A service restarts when a file under the
paths it declares changed after its process started: the candidates come from the checkout's git
state (tracked and untracked files, .gitignore honoured), their times from the files (a deleted
file from its folder), the process's start from /proc (supervisord's own record has whole seconds
only). A changed Python file that does not compile keeps every service it would restart running as
it is. Decisions and restarts hold a lock, so the watcher, `restart --changed` and `sync` never
restart a service twice for one save. `watch` waits for saves with inotify (through ctypes; no
package needed) and falls back to polling the folders' times.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

IGNORED_DIRS = {
    ".git",
    "__pycache__",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
}
UP = ("RUNNING", "STARTING", "BACKOFF")
HEALTH_TIMEOUT = 120.0

# --- which paths mean what (pure) ----------------------------------------------------------------


def glob_regex(pattern: str) -> str:
    """A path pattern as a regex: `**` crosses folders, `*` and `?` stay in one, and a pattern
    without either means that path and everything under it."""
    if not any(c in pattern for c in "*?"):
        return re.escape(pattern) + "(/.*)?"
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out += "(/.*)?"
            i += 3
        elif pattern.startswith("**/", i):
            out += "(.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out


def matcher(patterns: list[str]) -> Any:
    return (
        re.compile("^(?:" + "|".join(glob_regex(p) for p in patterns) + ")$") if patterns else None
    )


def roots(patterns: list[str]) -> list[str]:
    """The folders (or files) a set of patterns can match under: the part before the first glob."""
    out = set()
    for p in patterns:
        parts = p.split("/")
        fixed = []
        for part in parts:
            if any(c in part for c in "*?"):
                break
            fixed.append(part)
        out.add("/".join(fixed) or ".")
    if "." in out:
        return ["."]
    keep = [r for r in out if not any(r != o and r.startswith(o + "/") for o in out)]
    return sorted(keep)


def all_patterns(rules: dict[str, Any]) -> list[str]:
    pats = [p for ps in rules["services"].values() for p in ps]
    return pats + [p for n in rules["notes"] for p in n["paths"]]


def decide(
    files: dict[str, float],
    starts: dict[str, float],
    stops: dict[str, float],
    rules: dict[str, Any],
    looked: float = 0.0,
) -> dict[str, Any]:
    """What a set of files means (pure). files: path -> when it last changed; starts: service ->
    when its process started; stops: service -> when it was stopped on purpose (a service in
    neither does not run on this host); looked: when the last look was (notes are said once). Returns {"restart": {service: [files]}, "stopped":
    {service: [files changed since it stopped]}, "notes": [[note, files]]}."""
    restart: dict[str, list[str]] = {}
    stopped: dict[str, list[str]] = {}
    claimed = set()
    for name in rules["order"]:
        m = matcher(rules["services"].get(name, []))
        if m is None or (name not in starts and name not in stops):
            continue
        mine = [f for f in files if m.match(f)]
        claimed.update(mine)
        since = starts.get(name, stops.get(name, 0.0))
        newer = sorted(f for f in mine if files[f] > since)
        if newer:
            (restart if name in starts else stopped)[name] = newer
    # a change that restarts nothing but means something: since the last look, and since the
    # services started
    since_all = max(min(starts.values()) if starts else 0.0, looked)
    notes = []
    for n in rules["notes"]:
        m = matcher(n["paths"])
        hits = sorted(f for f in files if f not in claimed and files[f] > since_all and m.match(f))
        if hits:
            notes.append([n["note"], hits])
    return {"restart": restart, "stopped": stopped, "notes": notes}


def blocked(restart: dict[str, list[str]], errors: dict[str, Any]) -> dict[str, list[str]]:
    """The services a file that does not compile keeps as they are: service -> its bad files."""
    return {
        s: [f for f in fs if f in errors]
        for s, fs in restart.items()
        if any(f in errors for f in fs)
    }


def few(files: list[str], n: int = 3) -> str:
    shown = ", ".join(files[:n])
    return shown + (f" and {len(files) - n} more" if len(files) > n else "")


def describe(report: dict[str, Any], host: str = "HOST") -> list[str]:
    """The lines people read, for `restart --changed`, `sync` and the watcher's log (pure)."""
    lines = []
    if report.get("error"):
        return [report["error"]]
    for r in report.get("restarted", []):
        why = f"{few(r['files'])} changed"
        if r["ok"]:
            lines.append(f"{r['service']}: restarted ({why}), healthy in {r['seconds']:.1f} s")
        else:
            lines.append(f"{r['service']}: restarted ({why}) and FAILED: {r['error']}")
            lines += ["    | " + ln for ln in r.get("log", "").rstrip().splitlines()]
    for r in report.get("would", []):
        lines.append(f"{r['service']}: would restart ({few(r['files'])} changed)")
    for k in report.get("kept", []):
        e = k["errors"][0]
        pid = f" (pid {k['pid']})" if k.get("pid") else ""
        lines.append(
            f"{k['service']}: NOT restarted: {e['file']}:{e['line']}: {e['message']}; "
            f"the running process{pid} keeps serving"
        )
        lines += [f"    also {x['file']}:{x['line']}: {x['message']}" for x in k["errors"][1:]]
    for s in report.get("stopped", []):
        lines.append(
            f"{s['service']}: not started ({few(s['files'])} changed since it was stopped; "
            f"`devkit start {host} {s['service']}` starts it)"
        )
    for n in report.get("notes", []):
        lines.append(f"note: {few(n['files'])} changed: {n['note']}")
    if not lines:
        lines.append("nothing to restart: no service's files changed since it started")
    return lines


# --- the checkout ---------------------------------------------------------------------------------


def _mtime(path: str) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def _gone_since(checkout: str, rel: str) -> float:
    """When a file that is gone went: its nearest remaining folder changed then."""
    d = os.path.dirname(rel)
    while True:
        t = _mtime(os.path.join(checkout, d) if d else checkout)
        if t is not None:
            return t
        if not d:
            return 0.0
        d = os.path.dirname(d)


def candidates(checkout: str, under: list[str]) -> dict[str, float]:
    """Every file under the given roots that git tracks or would track (ignored ones left out),
    with when it last changed; a tracked file that is gone counts from when its folder changed."""
    cmd = ["git", "-C", checkout, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    cmd += ["--", *under] if under != ["."] else []
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        p = None
    if p is not None and p.returncode == 0:
        names = [n for n in p.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    else:  # not a git checkout: every file but the obvious caches
        names = []
        for r in under:
            top = os.path.join(checkout, r)
            if os.path.isfile(top):
                names.append(r)
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
                rel = os.path.relpath(dirpath, checkout)
                names += [
                    os.path.normpath(os.path.join(rel, f))
                    for f in filenames
                    if not f.endswith((".pyc", ".pyo"))
                ]
    out = {}
    for n in dict.fromkeys(names):
        t = _mtime(os.path.join(checkout, n))
        out[n] = t if t is not None else _gone_since(checkout, n)
    return out


_CHECK = (
    "import json, sys\n"
    "out = {}\n"
    "for path in sys.argv[1:]:\n"
    "    try:\n"
    "        with open(path, 'rb') as f:\n"
    "            compile(f.read(), path, 'exec', dont_inherit=True)\n"
    "    except SyntaxError as e:\n"
    "        out[path] = [e.lineno or 0, type(e).__name__ + ': ' + (e.msg or '')]\n"
    "    except (OSError, ValueError) as e:\n"
    "        pass\n"
    "print(json.dumps(out))\n"
)


def syntax_errors(checkout: str, files: list[str], python: str) -> dict[str, Any]:
    """The changed Python files that do not compile, under the dev venv's interpreter (the
    services' grammar): path -> [line, message]."""
    paths = [f for f in files if f.endswith(".py") and os.path.isfile(os.path.join(checkout, f))]
    if not paths:
        return {}
    here = os.path.realpath(sys.executable)
    if not python or not os.path.exists(python) or os.path.realpath(python) == here:
        out: dict[str, Any] = {}
        for rel in paths:
            try:
                with open(os.path.join(checkout, rel), "rb") as f:
                    compile(f.read(), rel, "exec", dont_inherit=True)
            except SyntaxError as e:
                out[rel] = [e.lineno or 0, type(e).__name__ + ": " + (e.msg or "")]
            except (OSError, ValueError):
                pass
        return out
    p = subprocess.run(
        [python, "-I", "-S", "-c", _CHECK, *paths],
        cwd=checkout,
        capture_output=True,
        timeout=60,
    )
    try:
        return dict(json.loads(p.stdout.decode() or "{}"))
    except ValueError:
        return {}


# --- supervisord ------------------------------------------------------------------------------


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


# --- one look ----------------------------------------------------------------------------------


def _looked(path: str) -> float:
    try:
        with open(path) as f:
            return float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return dict(json.load(f))


def _health(base: str) -> dict[str, str]:
    try:
        with open(os.path.join(base, "state", "services.json"), encoding="utf-8") as f:
            return dict(json.load(f).get("health") or {})
    except (OSError, ValueError):
        return {}


class Lock:
    """One decision-and-restart at a time per stack (the watcher, restart --changed, sync). A
    caller that holds it already (sync, while it changes the files) hands its descriptor down."""

    def __init__(self, base: str) -> None:
        self.path = os.path.join(base, "run", "edit.lock")
        self.fd, self.own = -1, True

    def __enter__(self) -> Lock:
        held = os.environ.get("DEVKIT_EDIT_LOCK_FD", "")
        if held.isdigit():
            self.fd, self.own = int(held), False
        else:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.own:
            os.close(self.fd)


def once(
    rules: dict[str, Any], dry_run: bool = False, quiet: dict[str, float] | None = None
) -> dict[str, Any]:
    """Look once and restart what changed. `quiet` (the watcher's): files whose syntax error or
    note was already reported as of that time, left out until they change again; the report's
    `told` is the next one."""
    base, checkout = rules["base"], rules["checkout"]
    if not os.path.isdir(checkout):
        return {"error": f"the checkout {checkout} does not exist on this host"}
    rpc = supervisor(os.path.join(base, "run", "supervisor.sock"))
    try:
        infos = [p for p in rpc.getAllProcessInfo() if p["name"] in rules["services"]]
    except OSError as exc:
        return {
            "error": f"the stack's supervisord does not answer ({exc}): `devkit start` brings it back"
        }
    starts, stops, pids = process_starts(infos)
    look = os.path.join(base, "state", "edit-looked")
    now = time.time()
    files = candidates(checkout, roots(all_patterns(rules)))
    plan = decide(files, starts, stops, rules, _looked(look))
    todo = plan["restart"]
    changed = sorted({f for fs in todo.values() for f in fs})
    errors = syntax_errors(checkout, changed, rules.get("python", ""))
    bad = blocked(todo, errors)
    quiet = quiet or {}

    def new(fs: list[str]) -> bool:
        return any(quiet.get(f) != files.get(f) for f in fs)

    report: dict[str, Any] = {
        "kept": [],
        "restarted": [],
        "would": [],
        "stopped": [{"service": s, "files": fs} for s, fs in plan["stopped"].items() if new(fs)],
        "notes": [{"note": n, "files": fs} for n, fs in plan["notes"] if new(fs)],
    }
    for s, fs in bad.items():
        if new(fs):
            errs = [{"file": f, "line": errors[f][0], "message": errors[f][1]} for f in fs]
            report["kept"].append({"service": s, "pid": pids.get(s, 0), "errors": errs})
    told = [f for fs in bad.values() for f in fs] + [f for _, fs in plan["notes"] for f in fs]
    told += [f for fs in plan["stopped"].values() for f in fs]
    report["told"] = {f: files.get(f, 0.0) for f in told}
    go = [s for s in rules["order"] if s in todo and s not in bad]
    if dry_run:
        report["would"] = [{"service": s, "files": todo[s]} for s in go]
        return report
    try:
        with open(look + ".tmp", "w") as f:
            f.write(f"{now}\n")
        os.replace(look + ".tmp", look)
    except OSError:
        pass  # notes are then said again next time
    if go:
        results = restart(rpc, go, _health(base), base)
        for r in results:
            r["files"] = todo[r["service"]]
        report["restarted"] = results
    return report


# --- watching -----------------------------------------------------------------------------------

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


# --- finding the stack (what `devkit status` does with `inventory`, in the same round trip) ------

RULES = "supervisor/edit.json"


def find(req: dict[str, Any]) -> str:
    """The base dir of the one stack with an edit loop the request names: its `base` (~ and
    @devkit spelled as devkit does), else devkit's own folders on this host; `stack` picks one."""
    home = "/var/lib/devkit" if os.getuid() == 0 else os.path.expanduser("~/.devkit")
    base = req.get("base") or ""
    if base:
        if base == "@devkit" or base.startswith("@devkit/"):
            base = home + base[len("@devkit") :]
        dirs = [os.path.expanduser(base)]
    else:
        import glob

        homes = ["/var/lib/devkit", os.path.expanduser("~/.devkit")]
        pats = [h + "/*" for h in homes] + [h + "/" + req.get("host", "") + "/*" for h in homes]
        dirs = [d for p in pats for d in sorted(glob.glob(p))]
    found = []
    for d in dict.fromkeys(dirs):
        try:
            with open(os.path.join(d, ".devkit-stack"), encoding="utf-8") as f:
                marker = [*f.read().splitlines(), "", ""][:2]
        except OSError:
            continue
        if req.get("stack") and req["stack"] not in marker:
            continue
        if os.path.exists(os.path.join(d, RULES)):
            found.append((d, marker[0]))
    if len(found) == 1:
        return found[0][0]
    if not found:
        where = base or "/var/lib/devkit, ~/.devkit"
        raise LookupError("no provisioned stack with an edit loop ([edit]) in " + where)
    raise LookupError(
        "several stacks with an edit loop: "
        + ", ".join(f"{n} at {d}" for d, n in found)
        + "; say which with --stack or --base-dir"
    )


def located(req: dict[str, Any]) -> dict[str, Any]:
    """The stack's base dir and its rules (the request's `rules` file, else the one `find` finds)."""
    rules = load(req.get("rules") or os.path.join(find(req), RULES))
    return {"base": rules["base"], "rules": rules}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("changed", "locate", "watch"):
        sys.stderr.write("usage: devkit-edit.py changed|locate REQUEST | watch RULES\n")
        return 2
    if argv[1] == "watch":
        try:
            return watch(argv[2])
        except KeyboardInterrupt:
            return 0
    req = json.loads(argv[2])
    try:
        where = located(req)
    except (LookupError, OSError, ValueError) as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        return 0
    if argv[1] == "locate":
        sys.stdout.write(json.dumps(where) + "\n")
        return 0
    rules = where["rules"]
    with Lock(rules["base"]):
        report = once(rules, dry_run=bool(req.get("dry_run")))
    report.pop("told", None)
    report["base"] = rules["base"]
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
