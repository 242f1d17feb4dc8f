"""A provisioning run: connect and gather facts on every host (in parallel); settle each host's
source (source.py: a URL only the host can read is cloned first); build every host's desired state
once (a bad template or value stops the run before anything else changes anywhere); then plan and
apply each host independently. One host's failure never stops the others; Ctrl-C kills the
commands in flight on every host and still returns what each host got done."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, NamedTuple

from devkit.errors import RemoteError
from devkit.provision.engine import desired, facts, hosts, lock, operate, plan, source
from devkit.provision.engine.apply import apply
from devkit.provision.engine.events import Emit, Event, HostResult, OpResult, Redact, ServiceStatus
from devkit.provision.kinds import cluster, dirs, inits, programs, registry
from devkit.provision.kinds.base import SOURCE, ApplyContext, Desired, Facts, Op
from devkit.provision.ssh.connection import Connection, Held, Interrupted, Result
from devkit.provision.stack import layout
from devkit.provision.stack import spec as stk
from devkit.provision.stack.source import WHEELS, Code


class Options(NamedTuple):
    overrides: dict[str, Any]
    dry_run: bool = False
    parallel: int = 8
    wheelhouse: str = ""  # a local dir of wheels for the venvs (uploaded, installed offline)


class Job(NamedTuple):
    stack: stk.Stack
    target: hosts.Target


Connect = Callable[[hosts.Target], Connection]
# seconds a service not up at the end of a run gets before the run fails: a check can time out
# once on a loaded machine (the webserver's login goes through the manager to PostgreSQL)
HEALTH_SETTLE = 30.0


class _Host:
    """One host's run as it goes: its connection, facts, desired state and what it did."""

    def __init__(self, job: Job) -> None:
        self.job, self.start = job, time.monotonic()
        self.conn: Connection | None = None
        self.lock: Held | None = None
        self.facts: Facts | None = None
        self.code: Code = WHEELS  # what its stack runs, settled by the source stage
        self.desired: Desired | None = None
        self.done: list[OpResult] = []
        self.current: Op | None = None
        self.result: HostResult | None = None
        self.ended = threading.Event()  # set with the result (a cluster's agent hosts wait on it)

    @property
    def name(self) -> str:
        return self.job.target.name

    def finish(self, status: str, error: RemoteError | None = None, **more: Any) -> HostResult:
        redact = Redact.of(self.desired.secrets if self.desired else {})
        ops = list(self.done)
        if error is not None and self.current is not None:
            c = self.current
            ops.append(OpResult(c.id, c.action, c.detail, "failed"))
        self.result = HostResult(
            self.name,
            status,
            [redact.op(o) for o in ops],
            None if error is None else redact.error(error),
            time.monotonic() - self.start,
            **more,
        )
        self.ended.set()
        return self.result


def _prepare(h: _Host, connect: Connect, emit: Emit, dry_run: bool) -> None:
    try:
        emit(Event(h.name, "connecting"))
        h.conn = connect(h.job.target)
        t = h.job.target
        base = layout.default_base(h.job.stack.name, t.name, t.base_dir, t.sandbox)
        # with the init steps' rechecks as last recorded: a converged host needs no other look
        look = facts.command(
            facts.request(h.job.stack, base, inits={inits.RECHECK: layout.RECHECK})
        )
        if dry_run:
            emit(Event(h.name, "facts"))
            h.facts = facts.answered(h.conn, h.conn.run(look, "facts", check=False))
        else:  # one run at a time, from before the facts (taken with the lock: one round trip)
            emit(Event(h.name, "lock"))
            h.lock = lock.acquire(h.conn, base, then=look)
            emit(Event(h.name, "facts"))
            h.facts = facts.answered(h.conn, Result(0, h.lock.said, ""))
        _check_base(h)
        _check_platform(h)
    except RemoteError as exc:
        emit(Event(h.name, "failed", text=f"{exc.op}: {exc.detail}"))
        h.finish("failed", exc)


def _check_base(h: _Host) -> None:
    """The base dir as the host resolved it (~ expanded, links followed) is a folder of its own:
    never a system folder nor the login user's home or a folder that holds it, and devkit's
    (made by devkit, or empty when it took it), never one that holds someone else's files."""
    host = h.facts.host if h.facts else None
    if host is None:
        return
    problem = layout.host_base_problem(host.base, host.base_real, host.home)
    if problem:
        raise RemoteError(
            h.name,
            "base dir",
            f"the base dir {problem}: nothing was changed",
            hint=layout.BASE_DIR_HINT,
        )
    have: dirs.DirFacts = h.facts.of(dirs.NAME)
    if dirs.not_ours(have):
        what = (
            "is not a folder"
            if have.base == "file"
            else f"holds files that are not devkit's (it has no {layout.STACK_MARKER})"
        )
        raise RemoteError(
            h.name,
            "base dir",
            f"the base dir {host.base} {what}: devkit makes a folder of its own or takes an "
            "empty one; nothing was changed",
            hint="Give a new or empty folder (--base-dir, or base_dir in [tool.devkit.hosts.NAME]), "
            "or move those files away first.",
        )


def _check_platform(h: _Host) -> None:
    """One clear line on an OS the stack does not say it runs on, before anything changes."""
    stack, host = h.job.stack, h.facts.host if h.facts else None
    if host is None or not stack.platforms:
        return
    platform = stk.platform_of(host.os)
    if platform not in stack.platforms:
        supported = ", ".join(p.capitalize() for p in stack.platforms)
        raise RemoteError(
            h.name,
            "platform",
            f"{host.os.get('name') or platform or 'an unknown OS'} is not a platform the "
            f"{stack.name} stack runs on",
            hint=f"It runs on {supported}. Use a host with one of them (devkit sandbox up NAME "
            "--release bookworm|trixie gives Debian 12 or 13).",
        )


def _bring(h: _Host, opts: Options, emit: Emit) -> None:
    """A source only the host can read (a URL) is cloned first, then settled from the host's
    checkout: the desired state is built from what it brought."""
    assert h.conn is not None and h.facts is not None

    def on_op(op: Op, finished: bool) -> None:
        if finished:
            h.current = None
            h.done.append(OpResult(op.id, op.action, op.detail, "changed"))
            emit(Event(h.name, "changed", op.id, op.action))
        else:
            h.current = op
            emit(Event(h.name, "op", op.id, op.action))

    job = h.job
    try:
        source.bring(h.conn, job.stack, job.target, opts.overrides, h.facts, h.code, on_op)
        emit(Event(h.name, "facts"))
        h.facts = facts.gather(h.conn, job.stack, h.facts.host.base)
        h.code = desired.settle_code(job.stack, job.target, opts.overrides, h.facts)
    except RemoteError as exc:
        emit(Event(h.name, "failed", text=f"{exc.op}: {exc.detail}"))
        h.finish("failed", exc)


def _look_again(h: _Host, d: Desired, f: Facts) -> Facts:
    """A second look, with the rendered stack, where a kind needs one (a checkout's path)."""
    assert h.conn is not None
    conn = h.conn

    def ask(kind: str, req: Any) -> Any:
        return facts.gather_kind(conn, kind, req, d.layout.base)

    for kind in registry.KINDS:
        f = kind.refresh(conn, d, f, ask)
    return f


def _await_manager(h: _Host, m: _Host, op: Op, cancel: threading.Event, emit: Emit) -> None:
    """An agent host's service that registers with the manager host starts once that host's run
    has ended well (its etcd, Redis and manager are up)."""
    if not m.ended.is_set():
        emit(Event(h.name, "op", op.id, f"waits for {m.name}"))
    while not m.ended.wait(0.25):
        if cancel.is_set():
            raise Interrupted(h.name, op.id, "interrupted (Ctrl-C) before this op")
    assert m.result is not None
    if m.result.status not in ("changed", "unchanged"):
        raise RemoteError(
            h.name,
            op.id,
            f"not started: the cluster's manager host {m.name} is {m.result.status}",
            hint=f"Fix {m.name} (its error is above), then provision again.",
        )


def _converge(
    h: _Host,
    opts: Options,
    emit: Emit,
    cancel: threading.Event,
    new_secret: Any = None,
    manager: _Host | None = None,
) -> None:
    assert h.conn is not None and h.facts is not None and h.desired is not None
    cl = cluster.spec_of(h.job.stack)
    # what starts once the manager host's run is done: the services the stack names, and the mount
    # of its shared folder (the manager host offers it in its run)
    waits = {f"program:{s}" for s in cl.waits} | {cluster.MOUNT_OP} if cl and manager else set()
    conn, d, f = h.conn, h.desired, h.facts
    try:
        f = _look_again(h, d, f)
        ops = plan.plan(d, f)
        busy = programs.conflicts(d, f)
        if busy and opts.dry_run:
            ops.insert(0, Op("programs", "ports", "conflict", f"already in use: {', '.join(busy)}"))
        elif busy:
            raise RemoteError(
                h.name,
                "ports",
                f"already in use on the host: {', '.join(busy)}; nothing was started",
                hint="Stop what listens there, or move the service with --set NAME.port=N "
                "(`devkit provision --dry-run` lists the ports).",
            )
        if opts.dry_run:
            for op in ops:
                text = registry.kind(op.kind).diff(conn, op, d)
                h.done.append(OpResult(op.id, op.action, op.detail, "planned", text))
            h.finish("planned" if ops else "unchanged", notes=d.notes)
            return

        def on_op(op: Op, finished: bool) -> None:
            if cancel.is_set():
                raise Interrupted(h.name, op.id, "interrupted (Ctrl-C) before this op")
            if not finished:
                if op.id in waits and manager is not None:
                    _await_manager(h, manager, op, cancel, emit)
                h.current = op
                emit(Event(h.name, "op", op.id, op.action))
            else:
                h.current = None
                h.done.append(OpResult(op.id, op.action, op.detail, "changed"))
                emit(Event(h.name, "changed", op.id, op.action))

        first = [op for op in ops if registry.kind(op.kind).STAGE == SOURCE]
        told: list[str] = []  # the first stage's notes (what a push did)
        if first:
            # the source first; then the host is looked at again and the rest planned from what
            # it brought (the desired state was built from that code already)
            ctx0 = ApplyContext(d, f, opts.wheelhouse)
            apply(conn, ctx0, first, on_op)
            told = list(ctx0.state.get("notes", ()))
            emit(Event(h.name, "facts"))
            f = _look_again(h, d, facts.gather(conn, h.job.stack, d.layout.base))
            ops = plan.plan(d, f)
        ctx = ApplyContext(d, f, opts.wheelhouse)
        apply(conn, ctx, ops, on_op)
        notes = "\n".join([d.notes.rstrip(), *told, *ctx.state.get("notes", ())]).strip()
        rows = _health(h, conn, d, emit) if h.done else None
        sick = [x for x in rows or () if not x.up]
        if sick:
            err = RemoteError(
                h.name,
                "health",
                "not healthy at the end of the run: " + ", ".join(x.service for x in sick),
                stderr_tail="\n".join(f"{x.service}: {x.state} {x.health_output}" for x in sick),
                hint=f"See why: devkit logs {h.name} {sick[0].service}",
            )
            emit(Event(h.name, "failed", text=f"health: {err.detail}"))
            h.finish("failed", err, services=rows, notes=notes)
            return
        h.finish("changed" if h.done else "unchanged", services=rows, notes=notes)
    except RemoteError as exc:
        status = "interrupted" if isinstance(exc, Interrupted) or cancel.is_set() else "failed"
        emit(Event(h.name, "failed", text=f"{exc.op}: {Redact.of(d.secrets).text(exc.detail)}"))
        h.finish(status, exc)


def _health(h: _Host, conn: Connection, d: Desired, emit: Emit) -> list[ServiceStatus]:
    """The status rows after a run that changed something. Each program it started passed its
    check, but one it left alone may be crash-looping (supervisord restarting it), and a check can
    fail once under load: a service not up is looked at again, for up to HEALTH_SETTLE seconds,
    before the run is called failed (at once when supervisord has given up on it)."""
    emit(Event(h.name, "health"))
    settled = time.monotonic() + HEALTH_SETTLE
    while True:
        f = facts.gather(conn, h.job.stack, d.layout.base, programs={"health": "provisioned"})
        rows = operate.rows(h.job.stack, f)
        sick = [x for x in rows if not x.up]
        if not sick or any(x.state in operate.GAVE_UP for x in sick) or time.monotonic() >= settled:
            return rows
        time.sleep(1.0)


def run(
    jobs: list[Job], opts: Options, connect: Connect, emit: Emit, new_secret: Any = None
) -> list[HostResult]:
    """Every job to its end, one result per job in order. Raises DevkitError (nothing changed
    anywhere) when a host's desired state cannot be built. On Ctrl-C the commands in flight are
    killed on every host and the hosts not done are `interrupted`."""
    hs = [_Host(j) for j in jobs]
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, min(opts.parallel, len(jobs))))
    try:
        _wait([pool.submit(_prepare, h, connect, emit, opts.dry_run) for h in hs])
        ready = [h for h in hs if h.result is None and h.facts is not None]
        for h in ready:
            h.code = desired.settle_code(h.job.stack, h.job.target, opts.overrides, h.facts)
        if not opts.dry_run:
            _wait([pool.submit(_bring, h, opts, emit) for h in ready if not h.code.known])
        manager = next((h for h in hs if h.job.target.role == "manager"), None)
        # the manager host's first: what it shares is part of its agent hosts' desired states
        for h in sorted(hs, key=lambda h: h is not manager):
            if h.result is None and h.facts is not None:
                if h.job.target.role == "agent" and (manager is None or manager.facts is None):
                    m = manager.name if manager else "(none)"
                    h.finish(
                        "failed",
                        RemoteError(h.name, "cluster", f"the manager host {m} is not reachable"),
                    )
                    continue
                kw = {"new_secret": new_secret} if new_secret else {}
                addr = manager.facts.host.address if manager and manager.facts else ""
                h.desired = desired.build(
                    h.job.stack,
                    h.job.target,
                    opts.overrides,
                    h.facts,
                    manager_address=addr,
                    code=h.code,
                    share=_share(h, manager, hs),
                    **kw,
                )
        # the manager host first: its agent hosts wait for it, and must not hold every worker
        order = sorted(hs, key=lambda h: h is not manager)
        _wait(
            [
                pool.submit(
                    _converge,
                    h,
                    opts,
                    emit,
                    cancel,
                    new_secret,
                    manager if h.job.target.role == "agent" else None,
                )
                for h in order
                if h.result is None
            ]
        )
    except KeyboardInterrupt:
        cancel.set()
        for h in hs:
            if h.conn is not None:
                h.conn.interrupt()
        pool.shutdown(wait=True, cancel_futures=True)
        for h in hs:
            if h.result is None:
                h.finish("interrupted", Interrupted(h.name, "run", "interrupted (Ctrl-C)"))
    finally:
        pool.shutdown(wait=True)
        for h in hs:
            if h.lock is not None:
                h.lock.release()
            if h.conn is not None:
                h.conn.close()
    return [h.result for h in hs if h.result is not None]


def _share(h: _Host, manager: _Host | None, hs: list[_Host]) -> Any:
    """What a cluster's shared folder is to host `h` (kinds/cluster.py): on the manager host,
    whether an agent host of this run is on another filesystem; on an agent host, the manager
    host's folder (None when the manager host's desired state was not built)."""
    if manager is None or manager.facts is None or not h.job.target.role:
        return None
    if h is manager:
        agents = [a for a in hs if a.job.target.role == "agent" and a.facts is not None]
        return cluster.Offer(any(cluster.apart(a.facts, manager.facts) for a in agents))
    if manager.desired is None:
        return None
    return cluster.source(manager.desired, manager.facts)


def _wait(futures: list[Any]) -> None:
    # in short waits: the main thread must come back to Python now and then to see a Ctrl-C that
    # the kernel delivered to another thread
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=0.25)
    for fu in futures:
        fu.result()
