"""Operating a provisioned stack: status, start, stop, restart, logs and teardown, through the host's
supervisord (nothing is found or killed by process name)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import NamedTuple, TextIO

from devkit.errors import DevkitError
from devkit.provision.engine import desired, facts, hosts, lock, mounts
from devkit.provision.engine.events import ServiceStatus
from devkit.provision.kinds import boot as boot_kind
from devkit.provision.kinds import cluster, dirs, programs, registry, supervisor
from devkit.provision.kinds import edit as edit_kind
from devkit.provision.kinds.base import Facts
from devkit.provision.onhost.edit import latency
from devkit.provision.ssh.command import Part, cat, join, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack import spec as stk
from devkit.provision.stack.layout import Layout

CRASHED = ("FATAL", "BACKOFF", "EXITED")
GAVE_UP = ("FATAL", "STOPPED")  # supervisord will not start these again by itself


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


class Found(NamedTuple):
    """A stack devkit provisioned on a host, as its base dir's marker says."""

    base: str
    stack: str
    stack_dir: str  # "" for devkit's own stacks


def inventory(conn: Connection, target: hosts.Target) -> list[Found]:
    """The stacks devkit provisioned on the host: at the target's base dir when it has one, else in
    devkit's folders (/var/lib/devkit, ~/.devkit) and their folder for this host (a sandbox that
    shares this machine's filesystem keeps its stacks in one named after it)."""
    if target.base_dir:
        dirs_: list[Part] = [lock.base_word(target.base_dir.replace("{host}", target.name))]
    else:
        homes = (layout.ROOT_HOME, '"$HOME"/.devkit')
        dirs_ = [cat(h, "/*") for h in homes] + [cat(h, "/", q(target.name), "/*") for h in homes]
    script = sh(
        "for d in",
        *dirs_,
        '; do [ -f "$d/.devkit-stack" ] || continue;',
        "printf '%s\\0' \"$d\"; cat \"$d/.devkit-stack\"; printf '\\0'; done",
    )
    out = conn.run(script, "inventory", check=False).stdout.split("\0")
    found = []
    for base, marker in zip(out[0::2], out[1::2], strict=False):
        lines = [*marker.splitlines(), "", ""]
        if lines[0]:
            found.append(Found(base, lines[0], lines[1]))
    return list(dict.fromkeys(found))


def choose(found: list[Found], target: hosts.Target, stack: str | None) -> list[Found]:
    """The deployments a command acts on: the one asked for (--stack, --base-dir), or all found."""
    if stack:
        found = [f for f in found if stack in (f.stack, f.stack_dir)]
    if not found:
        what = (
            f"no {stack} stack"
            if stack
            else f"no {target.stack} stack (nor any other devkit stack)"
        )
        raise DevkitError(
            f"{target.name}: {what} found (looked in {layout.ROOT_HOME}, ~/.devkit"
            + (f" and {target.base_dir}" if target.base_dir else "")
            + ")",
            f"Provision it first: devkit provision {target.name}"
            + (f" --stack {stack}" if stack else ""),
        )
    return found


def load_found(f: Found) -> stk.Stack:
    return registry.load_stack(f.stack_dir or f.stack)


def find(
    conn: Connection, stack: stk.Stack, target: hosts.Target, health: bool = False
) -> Deployment:
    """The stack on the host (its facts, with the health checks run when asked); an error that
    says how to provision it when it is not there."""
    base = layout.default_base(stack.name, target.name, target.base_dir, target.sandbox)
    extra = {programs.NAME: {"health": "provisioned"}} if health else {}
    f = facts.gather(conn, stack, base, **extra)
    if (f.of("dirs").marker or "").partition("\n")[0].strip() != stack.name:
        raise DevkitError(
            f"{target.name}: no {stack.name} stack at {f.host.base}",
            f"Provision it first: devkit provision {target.name}",
        )
    return Deployment(conn, stack, target, f)


def rows(stack: stk.Stack, f: Facts) -> list[ServiceStatus]:
    """One row per service the host runs: supervisord's state, pid, uptime and the health check."""
    pf: programs.ProgramFacts = f.of(programs.NAME)
    names = [s.name for s in stack.services if s.name in pf.programs or not pf.programs]
    edits = f.of(edit_kind.NAME).latency
    out = []
    for name in names:
        p = pf.programs.get(name)
        h = pf.health.get(name)
        e = latency.summary(edits.get(name, []))
        out.append(
            ServiceStatus(
                name,
                p.state if p else ("STOPPED" if pf.running else "NOT RUNNING"),
                (p.pid or None) if p else None,
                p.uptime if p else 0,
                None if h is None else h.ok,
                (h.output if h else "").strip(),
                edit=e or None,
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


class Members(NamedTuple):
    lines: list[str]  # the stack's cluster status, a line per member
    ok: bool


def cluster_members(dep: Deployment) -> Members:
    """The stack's `[cluster] status` command, rendered for the manager host and run there."""
    d = desired.build(dep.stack, dep.target, {}, dep.facts, manager_address=dep.facts.host.address)
    text = d.of("cluster_status")
    if not text.strip():
        return Members([f"the stack {dep.stack.name} says nothing about its cluster"], True)
    res = dep.conn.run(sh(text).labelled("cluster status"), "status", check=False)
    lines = (res.stdout or res.stderr).strip().splitlines()
    return Members(lines or ["(no answer)"], res.rc == 0)


def notes(f: Facts) -> list[str]:
    """What the kinds say about the host beyond its services (images, adaptations devkit made)."""
    return [line for kind in registry.KINDS for line in kind.notes(f)]


def all_ok(dep: Deployment, rows_: list[ServiceStatus]) -> bool:
    return dep.programs.running and all(r.up for r in rows_)


def _check_service(dep: Deployment, service: str) -> None:
    if service not in dep.services():
        raise DevkitError(
            f"{dep.target.name}: no service {service!r}", f"Services: {', '.join(dep.services())}."
        )


def control(dep: Deployment, verb: str, service: str | None) -> tuple[bool, str]:
    """start / stop / restart one service or all (in priority order, each healthy before the
    next); returns (ok, stderr of the failure). With supervisord down (a reboot), start and
    restart bring the whole stack back."""
    pf, lay = dep.programs, dep.layout
    if service:
        _check_service(dep, service)
        if pf.running and service not in pf.programs:
            raise DevkitError(f"{dep.target.name}: {service!r} does not run on this host")
    start_all = sh("sh", q(lay.path(layout.START_ALL)))
    if not pf.running:
        if verb == "stop":
            return True, ""
        cmd = join([supervisor.start_daemon(lay), start_all])
    elif verb == "stop":
        cmd = supervisor.ctl(lay, "stop", service or "all")
    elif service:
        cmd = supervisor.start(
            lay, service, pf.checks.get(service, ""), "ensure" if verb == "start" else verb
        )
    elif verb == "restart":
        cmd = join([sh(supervisor.ctl(lay, "stop", "all"), ">/dev/null"), start_all])
    else:
        cmd = start_all
    res = dep.conn.run(cmd, verb, check=False)
    return res.rc == 0, res.stderr


def down_note(dep: Deployment) -> str:
    """Why the stack is not running and how to bring it back (supervisord is down)."""
    boot = dep.facts.of(boot_kind.NAME)
    how = f"`devkit start {dep.target.name}` brings it back"
    if boot.enabled:
        return f"the stack is down (its systemd unit {boot.unit} is not running): {how}"
    return f"the stack is down (the host rebooted, or supervisord was stopped): {how}"


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
    # a cluster's shared folder outside the base dir, and the manager host's authorized line
    for cmd, what in cluster.undo(dep.facts, lay.base, purge):
        dep.conn.run(cmd, "teardown")
        done.append(f"{name}: {what}")
    if purge:
        unit = boot_kind.remove(dep.facts)
        if unit:
            dep.conn.run(join(unit), "purge")
            done.append(f"{name}: removed the systemd unit {dep.facts.of(boot_kind.NAME).unit}")
        undo = dirs.restore(dep.facts.of(dirs.NAME).granted)
        if undo:  # the parents devkit opened for the stack's other users, put back as they were
            dep.conn.run(join(undo), "purge")
            done.append(f"{name}: restored the permissions of {len(undo)} parent folder(s)")
        done += _purge_base(dep)
        dep.conn.run(lock.remove(lay.base), "purge")
    return done


def _purge_base(dep: Deployment) -> list[str]:
    """Remove the base dir, only when devkit made it (its origin record says so, or it is a stack's
    folder in devkit's own); a folder that was there before devkit took it stays."""
    lay, name = dep.layout, dep.target.name
    origin = dep.facts.of(dirs.NAME).origin
    if not (origin == layout.CREATED or (not origin and _in_devkit_folder(lay.base))):
        how = (
            "was there, empty, when devkit took it"
            if origin
            else "has no record that devkit made it"
        )
        return [
            f"{name}: kept {lay.base}: it {how}, so devkit does not delete it (its services are "
            f"stopped; to delete it yourself: rm -rf -- {lay.base})"
        ]
    # the marker (and the origin record) say it is this stack's folder and devkit made it
    checks = [
        sh('[ "$(head -n 1 --', q(lay.path(layout.STACK_MARKER)), ')" =', q(dep.stack.name), "]")
    ]
    if origin:
        checks.append(sh('[ "$(cat --', q(lay.path(layout.ORIGIN)), ')" =', q(origin), "]"))
    cmd = sh(join(checks), "&& rm -rf --", q(lay.base), *_rmdir_devkit_parent(lay.base))
    dep.conn.run(cmd, "purge")
    return [f"{name}: removed {lay.base} (devkit made it)"]


def _in_devkit_folder(base: str) -> bool:
    """A default base dir: a stack's folder in devkit's own (or in its folder for a sandbox)."""
    parent = PurePosixPath(base).parent
    homes = (PurePosixPath(layout.ROOT_HOME),)
    return (
        parent.name == ".devkit"
        or parent.parent.name == ".devkit"
        or parent in homes
        or parent.parent in homes
    )


def _rmdir_devkit_parent(base: str) -> tuple[Part, ...]:
    """Shell words that also remove devkit's own per-host folder above a default base dir
    (devkit's own folder, or <it>/<sandbox>) once it is empty; folders the user chose are left alone."""
    if not _in_devkit_folder(base):
        return ()
    parent = PurePosixPath(base).parent
    return ("&& { rmdir --", q(str(parent)), "2>/dev/null || true; }")
