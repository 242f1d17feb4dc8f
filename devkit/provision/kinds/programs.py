"""Services run by the stack's own supervisord: its config and one include file per program, and the
bring-up: supervisord, then each service in start order (its prestart steps, the program until its
health check passes, its poststart steps). A program restarts when a file, secret or venv it uses
changes; `state/programs.json` records what each was last started with."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from devkit.errors import ConfigError, RemoteError
from devkit.provision.kinds import supervisor
from devkit.provision.kinds.base import (
    LATER,
    ApplyContext,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
    no_check,
    no_diff,
    no_notes,
    no_refresh,
    no_steps,
)
from devkit.provision.kinds.files import DFile
from devkit.provision.onhost.facts import read, run
from devkit.provision.ssh.command import join, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout, render
from devkit.provision.stack.spec import Stack

NAME = "programs"
UP_STATES = ("RUNNING", "STARTING")


class DProgram(NamedTuple):
    name: str
    health: str  # shell: exits 0 when the service answers
    hash: str  # of its config and of every file, secret and venv it depends on
    priority: int = 100  # start order (then stack order); stopped in reverse


class DPort(NamedTuple):
    service: str
    name: str
    port: int
    forward: bool


class DPrograms(NamedTuple):
    programs: tuple[DProgram, ...]
    ports: tuple[DPort, ...]


class ProgramState(NamedTuple):
    state: str  # supervisord's: RUNNING, STARTING, STOPPED, BACKOFF, EXITED, FATAL
    pid: int
    uptime: int  # seconds
    spawnerr: str = ""


class Health(NamedTuple):
    ok: bool
    output: str


class ProgramFacts(NamedTuple):
    running: bool  # supervisord
    pid: int
    programs: dict[str, ProgramState]
    error: str  # why supervisord did not answer
    files: tuple[str, ...]  # the program include files present
    applied: dict[str, str]  # program -> the hash it was last started with
    ports: tuple[tuple[str, int], ...]  # (service, port) as last provisioned
    checks: dict[str, str]  # service -> its health check, as last provisioned
    health: dict[str, Health]  # the checks' results when asked for (status), by service

    def state(self, name: str) -> str | None:
        p = self.programs.get(name) if self.running else None
        return p.state if p else None


def request(stack: Stack) -> dict[str, Any]:
    return {
        "pidfile": layout.PIDFILE,
        "sock": layout.SOCK,
        "dir": layout.PROGRAMS_DIR,
        "applied": layout.APPLIED,
        "services": layout.SERVICES,
        "serving": layout.SERVING_DIR,
        "health": {},  # or "provisioned": the checks as recorded in services.json (status)
    }


def _serving(
    base: str, folder: str, name: str, pid: int
) -> tuple[int, float] | None:  # on the host
    """The child that serves for a program run by devkit's launcher (onhost/edit/launch.py): its
    pid and start, when the launcher's record is this process's and that child is there."""
    try:
        rec = json.loads(read(os.path.join(base, folder, name + ".json")) or "{}")
        child = int(rec.get("pid") or 0)
        if rec.get("launcher") == pid and child and os.path.exists(f"/proc/{child}"):
            return child, float(rec.get("started") or 0)
    except (ValueError, TypeError, AttributeError):
        pass
    return None


def _supervisor(
    base: str, pidfile: str, sock: str, folder: str = ""
) -> dict[str, Any]:  # on the host
    text = (read(os.path.join(base, pidfile)) or "").strip()
    pid = int(text) if text.isdigit() else 0
    out: dict[str, Any] = {"running": False, "pid": pid, "programs": {}, "error": ""}
    if pid:
        # the pid file can outlive supervisord (a reboot, a kill -9) and its pid be reused: it
        # is ours only if that process is a supervisord of this base dir
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            out["running"] = any(b"supervisord" in a for a in argv) and any(
                a.startswith(base.encode() + b"/") for a in argv
            )
        except OSError:
            pass
        if pid and not out["running"]:
            out["error"] = f"stale pid file: process {pid} is not this stack's supervisord"
    if not out["running"]:
        return out
    import http.client
    import xmlrpc.client

    sock_path = os.path.join(base, sock)

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(10)
            self.sock.connect(sock_path)

    class Transport(xmlrpc.client.Transport):
        def make_connection(self, host: Any) -> Any:
            return Conn("localhost")

    try:
        proxy: Any = xmlrpc.client.ServerProxy("http://localhost", transport=Transport())
        now = time.time()
        for p in proxy.supervisor.getAllProcessInfo():
            pid, start = p["pid"], p["start"]
            child = _serving(base, folder, p["name"], pid) if folder and pid else None
            if child is not None:
                pid, start = child
            out["programs"][p["name"]] = {
                "state": p["statename"],
                "pid": pid,
                "uptime": int(now - start) if p["statename"] == "RUNNING" else 0,
                "spawnerr": p["spawnerr"],
            }
    except Exception as exc:  # a dead socket is a fact, not a crash
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def collect(req: dict[str, Any], base: str) -> dict[str, Any]:  # runs on the host
    out = _supervisor(base, req["pidfile"], req["sock"], req.get("serving", ""))
    try:
        out["files"] = sorted(os.listdir(os.path.join(base, req["dir"])))
    except OSError:
        out["files"] = []
    try:
        out["applied"] = json.loads(read(os.path.join(base, req["applied"])) or "{}")
    except ValueError:
        out["applied"] = {}
    try:
        services = json.loads(read(os.path.join(base, req["services"])) or "{}")
    except ValueError:
        services = {}
    out["ports"] = [[p["service"], p["port"]] for p in services.get("ports", [])]
    out["checks"] = services.get("health", {})
    checks = req["health"]
    if checks == "provisioned":
        checks = out["checks"]
    out["health"] = {}
    for name, cmd in checks.items():
        rc, output = run(cmd, timeout=10, shell=True)
        out["health"][name] = {"ok": rc == 0, "output": output[-300:]}
    return out


REMOTE = (_serving, _supervisor, collect)


def parse(raw: Any) -> ProgramFacts:
    return ProgramFacts(
        bool(raw.get("running")),
        int(raw.get("pid") or 0),
        {
            str(n): ProgramState(
                str(p["state"]),
                int(p.get("pid") or 0),
                int(p.get("uptime") or 0),
                str(p.get("spawnerr") or ""),
            )
            for n, p in (raw.get("programs") or {}).items()
        },
        str(raw.get("error") or ""),
        tuple(raw.get("files") or ()),
        {str(k): str(v) for k, v in (raw.get("applied") or {}).items()},
        tuple((str(s), int(p)) for s, p in raw.get("ports") or ()),
        {str(k): str(v) for k, v in (raw.get("checks") or {}).items()},
        {
            str(n): Health(bool(h["ok"]), str(h.get("output") or ""))
            for n, h in (raw.get("health") or {}).items()
        },
    )


def _written(b: Build, where: str, conf: Callable[..., str], *args: Any) -> str:
    """A supervisord config, or one line naming the value it cannot hold (before any op runs)."""
    try:
        return conf(*args)
    except render.UnsafeValue as exc:
        raise render.unsafe(where, exc, b.render.blame(exc.value, exc.check)) from None


def desired(b: Build) -> DPrograms:
    """The programs, their health checks and ports; adds supervisord's config, one include file
    per program and the services record to the files."""
    s, r, lay = b.stack, b.render.text, b.layout
    is_root = b.facts.host.uid == 0
    files: list[DFile] = b.built["files"]
    login = b.render.login
    files.append(
        DFile(
            "supervisord.conf",
            layout.SUPERVISOR_CONF,
            _written(b, layout.SUPERVISOR_CONF, supervisor.daemon_conf, lay, s.name),
            0o640,
            login,
            "",
        )
    )
    by_id = {f.id: f for f in files}
    venv_spec = {v.name: v.spec for v in b.built["venvs"]}
    dev = b.built.get("devvenv")  # a service runs from the checkout's dev venv: rebuilt, restarted
    programs, ports = [], []
    for svc in s.services:
        at = f"services.{svc.name}"
        spec = svc.program
        user = r(spec.user, f"{at}.program.user")
        prog = supervisor.Program(
            svc.name,
            r(spec.command, f"{at}.program.command"),
            {k: r(v, f"{at}.program.environment.{k}") for k, v in spec.environment.items()},
            r(spec.directory, f"{at}.program.directory"),
            user if is_root and user not in ("", login) else "",
            spec.priority,
            spec.startsecs,
            spec.stopsignal,
            spec.stopwaitsecs,
            spec.stopasgroup,
        )
        conf = _written(
            b,
            f"{s.source}: {at}.program ({layout.program_conf_rel(svc.name)})",
            supervisor.program_conf,
            lay,
            prog,
        )
        files.append(
            DFile(
                f"program:{svc.name}",
                layout.program_conf_rel(svc.name),
                conf,
                0o640,
                login,
                svc.name,
            )
        )
        deps = (
            [f"file:{f.id}" for f in svc.files]
            + [f"secret:{n}" for n in svc.secrets]
            + list(svc.uses)
        )
        h = hashlib.sha256(conf.encode())
        for dep in sorted(set(deps)):
            kind, _, ref = dep.partition(":")
            value = {
                # a file of a service this host does not run (an agent host of a cluster)
                "file": lambda x: by_id[x].content if x in by_id else "",
                "secret": lambda x: b.secrets[x],
                "venv": lambda x: venv_spec.get(x, ""),  # a venv of the other mode
            }[kind](ref)
            h.update(f"\0{dep}\0{value}".encode())
        if dev is not None:
            h.update(f"\0devvenv\0{dev.spec}".encode())
        programs.append(
            DProgram(svc.name, r(svc.health, f"{at}.health"), h.hexdigest()[:16], spec.priority)
        )
        for port in svc.ports:
            text = r(port.port, f"{at}.ports.{port.name}")
            if text == "":  # a port this host's configuration does not use
                continue
            if not text.isdigit():
                raise ConfigError(
                    s.source, f"{at}.ports.{port.name}", f"port {text!r} is not a number"
                )
            ports.append(DPort(svc.name, port.name, int(text), port.forward))
    # how the stack comes back: supervisord's programs in order, each healthy before the next
    # (run by `devkit start` and, where the host has systemd, at boot)
    script = supervisor.start_all(lay, [p.name for p in ordered(programs)])
    files.append(DFile("start-all", layout.START_ALL, script, 0o750, login, ""))
    # what `devkit status` checks later, as provisioned (with this run's --set values)
    record = {
        "health": {p.name: p.health for p in programs if p.health},
        "ports": [x._asdict() for x in ports],
    }
    files.append(
        DFile(
            "services.json", layout.SERVICES, json.dumps(record, indent=1) + "\n", 0o640, login, ""
        )
    )
    return DPrograms(tuple(programs), tuple(ports))


def ordered(programs: tuple[DProgram, ...] | list[DProgram]) -> list[DProgram]:
    """Start order: priority, then the stack's order (sorted() is stable)."""
    return sorted(programs, key=lambda p: p.priority)


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    have: ProgramFacts = f.of(NAME)
    mine: DPrograms = d.of(NAME)
    changed = state.changed_files
    ops: list[Op] = []
    running = have.programs if have.running else {}
    fresh = not have.running or "supervisord.conf" in changed
    if not have.running:
        names = " ".join(p.name for p in ordered(mine.programs))
        ops.append(Op(NAME, "supervisord", "start", f"start supervisord for {names}"))
    elif "supervisord.conf" in changed:
        ops.append(Op(NAME, "supervisord", "reload", "supervisord.conf changed: restart it"))
        running = {}
    else:
        wanted = {p.name for p in mine.programs}
        listed = {x[: -len(".conf")] for x in have.files if x.endswith(".conf")}
        for name in sorted(set(running) | listed):
            if name not in wanted:
                ops.append(Op(NAME, f"program:{name}", "remove", "no longer in the stack", name))
    for p in ordered(mine.programs):
        pre = [op for step in state.steps for op in step(d, f, p.name, "prestart")]
        ops += pre
        st = running.get(p.name)
        now = st.state if st else None
        pid = f"program:{p.name}"
        if fresh:
            ops.append(Op(NAME, pid, "start", "start it", p))
        elif pid in changed or now is None:
            ops.append(Op(NAME, pid, "update", "config changed: reload and start", p))
        elif now not in UP_STATES:
            ops.append(Op(NAME, pid, "start", f"is {now}", p))
        elif have.applied.get(p.name) != p.hash:
            ops.append(Op(NAME, pid, "restart", "a file, secret or venv it uses changed", p))
        elif pre:
            ops.append(Op(NAME, pid, "restart", "its init steps ran again", p))
        ops += [op for step in state.steps for op in step(d, f, p.name, "poststart")]
    return ops


def conflicts(d: Desired, f: Facts) -> list[str]:
    """Ports the stack needs that something else on the host already listens on."""
    have: ProgramFacts = f.of(NAME)
    up = {n for n, x in have.programs.items() if have.running and x.state in UP_STATES}
    mine, listening = set(have.ports), set(f.host.listening)
    return [
        f"port {p.port} ({p.service} {p.name})"
        for p in d.of(NAME).ports
        if p.port in listening and not (p.service in up and (p.service, p.port) in mine)
    ]


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    lay = ctx.d.layout
    applied: dict[str, str] = ctx.state.setdefault(NAME, dict(ctx.f.of(NAME).applied))
    if op.id == "supervisord":
        if op.action == "reload":
            conn.run(supervisor.shutdown(lay), op.id)
        # programs do not autostart: each gets its own op, in order, after its init steps
        conn.run(supervisor.start_daemon(lay), op.id)
        applied.clear()
        return
    name = op.id.split(":", 1)[1]
    if op.action == "remove":
        conf = q(lay.path(layout.program_conf_rel(name)))
        conn.run(
            join(
                [
                    sh("rm -f --", conf),
                    sh(supervisor.ctl(lay, "reread"), ">/dev/null"),
                    supervisor.ctl(lay, "update", name),
                ]
            ),
            op.id,
        )
        applied.pop(name, None)
        return
    p: DProgram = op.item
    if op.action == "update":
        # `update` restarts a changed program; an unchanged or new one is then started
        cmd = join(
            [
                sh(supervisor.ctl(lay, "reread"), ">/dev/null"),
                sh(supervisor.ctl(lay, "update", name), ">/dev/null"),
                sh("{", supervisor.ctl(lay, "start", name), ">/dev/null 2>&1 || true; }"),
                supervisor.start(lay, name, p.health, "status"),
            ]
        )
    else:
        cmd = supervisor.start(
            lay, name, p.health, "restart" if op.action == "restart" else "start"
        )
    try:
        conn.run(cmd, op.id)
    except RemoteError as exc:
        # it may still be running (supervisord retries it) with what this run gave it: the next
        # run must restart it whatever its state, even when its config is back to the old one
        applied[name] = ""
        first, _, rest = exc.stderr_tail.partition("\n")
        if "crashed on start" in first or "is not healthy" in first:
            raise RemoteError(
                exc.host,
                exc.op,
                first.rstrip(":"),
                f"supervisorctl {op.action} {name}",
                exc.rc,
                rest,
                hint=f"See the whole log: devkit logs {conn.name} {name}",
            ) from None
        raise
    applied[name] = p.hash


def finish(conn: Connection, ctx: ApplyContext) -> None:
    """Record each program's hash (also after a failure: what did start is recorded)."""
    if NAME in ctx.state:
        data = json.dumps(ctx.state[NAME], sort_keys=True).encode()
        try:
            conn.put(ctx.d.layout.path(layout.APPLIED), data, 0o640, "state")
        except RemoteError:
            pass  # connection gone: the next run sees the old hashes and restarts what it must


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
refresh = no_refresh
check = no_check
diff = no_diff
steps = no_steps
notes = no_notes
