"""Operating a provisioned stack: status, start, stop, restart, logs and teardown, through the host's
supervisord (nothing is found or killed by process name)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import NamedTuple, TextIO

from devkit.errors import DevkitError
from devkit.provision import facts, hosts, layout, mounts, supervisor
from devkit.provision import stack as stk
from devkit.provision.command import Part, join, q, sh
from devkit.provision.connection import Connection
from devkit.provision.events import ServiceStatus
from devkit.provision.layout import Layout
from devkit.provision.resources import programs
from devkit.provision.resources.base import Facts

CRASHED = ("FATAL", "BACKOFF", "EXITED")


class Deployment(NamedTuple):
    """A stack found on a host, and the connection to it."""

    conn: Connection
    stack: stk.Stack
    target: hosts.Target
    facts: Facts

    @property
    def layout(self) -> Layout:
        return Layout(self.facts.host.base)

    @property
    def programs(self) -> programs.ProgramFacts:
        return self.facts.of(programs.NAME)

    def services(self) -> list[str]:
        return [s.name for s in self.stack.services]


def find(
    conn: Connection, stack: stk.Stack, target: hosts.Target, health: bool = False
) -> Deployment:
    """The stack on the host (its facts, with the health checks run when asked); an error that
    says how to provision it when it is not there."""
    base = layout.default_base(stack.name, target.name, target.base_dir, target.sandbox)
    extra = {programs.NAME: {"health": "provisioned"}} if health else {}
    f = facts.gather(conn, stack, base, **extra)
    if (f.of("dirs").marker or "").strip() != stack.name:
        raise DevkitError(
            f"{target.name}: no {stack.name} stack at {f.host.base}",
            f"Provision it first: devkit provision {target.name}",
        )
    return Deployment(conn, stack, target, f)


def rows(stack: stk.Stack, f: Facts) -> list[ServiceStatus]:
    """One row per service the host runs: supervisord's state, pid, uptime and the health check."""
    pf: programs.ProgramFacts = f.of(programs.NAME)
    names = [s.name for s in stack.services if s.name in pf.programs or not pf.programs]
    out = []
    for name in names:
        p = pf.programs.get(name)
        h = pf.health.get(name)
        out.append(
            ServiceStatus(
                name,
                p.state if p else ("STOPPED" if pf.running else "NOT RUNNING"),
                (p.pid or None) if p else None,
                p.uptime if p else 0,
                None if h is None else h.ok,
                (h.output if h else "").strip(),
            )
        )
    return out


def status(dep: Deployment) -> list[ServiceStatus]:
    """The rows, with the last lines of the log of each service that crashed."""
    out = []
    for row in rows(dep.stack, dep.facts):
        if row.state in CRASHED:
            log = q(dep.layout.log(row.service))
            row = row._replace(
                log_tail=dep.conn.run(sh("tail -n 8 --", log), "status", check=False).stdout
            )
        out.append(row)
    return out


def all_ok(dep: Deployment, rows_: list[ServiceStatus]) -> bool:
    return dep.programs.running and all(r.up for r in rows_)


def _check_service(dep: Deployment, service: str) -> None:
    if service not in dep.services():
        raise DevkitError(
            f"{dep.target.name}: no service {service!r}", f"Services: {', '.join(dep.services())}."
        )


def control(dep: Deployment, verb: str, service: str | None) -> tuple[bool, str]:
    """start / stop / restart one service or all (in priority order, each healthy before the
    next); returns (ok, stderr of the failure)."""
    pf, lay = dep.programs, dep.layout
    if not pf.running:
        raise DevkitError(
            f"{dep.target.name}: supervisord is not running",
            f"Start everything with: devkit provision {dep.target.name}",
        )
    if service:
        _check_service(dep, service)
        if service not in pf.programs:
            raise DevkitError(f"{dep.target.name}: {service!r} does not run on this host")
    if verb == "stop":
        cmd = supervisor.ctl(lay, "stop", service or "all")
    elif service:
        cmd = supervisor.start(
            lay, service, pf.checks.get(service, ""), "ensure" if verb == "start" else verb
        )
    else:
        prio = {s.name: s.program.priority for s in dep.stack.services}
        names = sorted((n for n in dep.services() if n in pf.programs), key=lambda n: prio[n])
        start = join(supervisor.start(lay, n, pf.checks.get(n, ""), "ensure") for n in names)
        cmd = (
            join([sh(supervisor.ctl(lay, "stop", "all"), ">/dev/null"), start])
            if verb == "restart"
            else start
        )
    res = dep.conn.run(cmd, verb, check=False)
    return res.rc == 0, res.stderr


def logs(dep: Deployment, service: str, lines: int, follow: bool, out: TextIO) -> int:
    _check_service(dep, service)
    cmd = sh("tail -n", str(int(lines)), "-F" if follow else "", "--", q(dep.layout.log(service)))
    # a pty for -f so the remote tail dies with the session when you press Ctrl-C
    return dep.conn.stream(cmd, out, pty=follow)


def teardown(dep: Deployment, purge: bool) -> list[str]:
    """Stop supervisord and every service, unmount what is left under the base dir, and with
    purge delete it; returns what was done, a line each."""
    lay, name = dep.layout, dep.target.name
    dep.conn.run(supervisor.shutdown(lay), "teardown")
    done = [f"{name}: stopped supervisord and every service"]
    gone = dep.conn.run(
        mounts.unmount_under(lay.base, dep.facts.host.uid == 0), "unmount"
    ).stdout.split()
    if gone:
        done.append(f"{name}: unmounted {len(gone)} mount(s) left under {lay.base}")
    if purge:
        marker = q(lay.path(layout.STACK_MARKER))
        # the marker check guards against ever deleting a directory devkit did not create
        cmd = sh(
            'test "$(cat',
            marker,
            ')" =',
            q(dep.stack.name),
            "&& rm -rf --",
            q(lay.base),
            *_rmdir_devkit_parent(lay.base),
        )
        dep.conn.run(cmd, "purge")
        done.append(f"{name}: removed {lay.base}")
    return done


def _rmdir_devkit_parent(base: str) -> tuple[Part, ...]:
    """Shell words that also remove devkit's own per-host folder above a default base dir
    (~/.devkit/<sandbox>/<stack>) once it is empty; folders the user chose are left alone."""
    parent = PurePosixPath(base).parent
    if ".devkit" not in parent.parts[:-1] and parent.name != ".devkit":
        return ()
    return ("&& { rmdir --", q(str(parent)), "2>/dev/null || true; }")
