"""Hosts in a bounded thread pool: connect, gather facts (one round trip), plan, apply; one host's
failure never stops the others. Returns one HostResult per host, in the order given."""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from devkit.errors import DevkitError, RemoteError
from devkit.provision import connect, desired, facts, hosts, plan
from devkit.provision import stack as stk


class OpResult(NamedTuple):
    id: str
    action: str
    detail: str
    status: str  # changed, failed, planned, skipped
    diff: str = ""


class HostResult(NamedTuple):
    host: str
    status: str  # changed, unchanged, failed, planned
    ops: list[OpResult]
    error: RemoteError | None
    seconds: float
    services: list[dict[str, Any]] | None = None  # the status rows after a run that changed things
    notes: str = ""  # the stack's words for the user (login URL...), rendered for this host


class Options(NamedTuple):
    overrides: dict[str, Any]
    dry_run: bool
    accept_new: bool
    parallel: int
    connect_timeout: float
    command_timeout: float
    wheelhouse: str = ""  # a local dir of wheels for the venvs (uploaded, installed offline)
    show_status: bool = False  # after a run that changed something, gather the status table


Event = Callable[[str, str], None]  # (host, what is happening now)


def preflight(stack: stk.Stack, target: hosts.Target, overrides: dict[str, Any]) -> None:
    """Render everything with stand-in facts: a bad template or variable fails before any connection."""
    stand_in = facts.Facts(
        "devkit",
        1000,
        "/home/devkit",
        "/home/devkit/.devkit/x",
        {},
        stack.name,
        {},
        {},
        {},
        {},
        {},
        [],
        {},
        [],
        {},
        {},
        {},
        None,
    )
    desired.build(stack, target, overrides, stand_in, new_secret=lambda n: "x" * n)


def status_rows(stack: stk.Stack, f: facts.Facts) -> list[dict[str, Any]]:
    """One row per service the host runs: supervisord's state, pid, uptime and the health check."""
    sv = f.supervisor or {}
    programs = sv.get("programs", {})
    names = [s.name for s in stack.services if s.name in programs or not programs]
    rows = []
    for name in names:
        info = programs.get(name, {})
        h = f.health.get(name)
        rows.append(
            {
                "service": name,
                "state": info.get("state", "STOPPED" if sv.get("running") else "NOT RUNNING"),
                "pid": info.get("pid") or None,
                "uptime": info.get("uptime", 0),
                "healthy": None if h is None else h["ok"],
                "health_output": (h or {}).get("output", "").strip(),
            }
        )
    return rows


def mask(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        if value:
            text = text.replace(value, "********")
    return text


def gather(
    r: connect.Remote,
    stack: stk.Stack,
    target: hosts.Target,
    health: dict[str, str] | str | None = None,
    base: str = "",
) -> facts.Facts:
    req = facts.request(stack, base or desired.default_base(stack.name, target), health)
    out = r.run(facts.command(req), "facts", display="<facts script>")
    try:
        return facts.parse(out.stdout)
    except (ValueError, TypeError) as exc:
        raise RemoteError(
            target.name,
            "facts",
            f"unreadable facts: {exc}",
            rc=out.rc,
            stderr_tail=connect.tail(out.stderr),
            hint="Does the host have python3?",
        ) from None


def _diffs(r: connect.Remote, d: desired.Desired, ops: list[plan.Op]) -> dict[str, str]:
    out = {}
    for op in ops:
        if op.id.startswith("file:") and op.action in ("create", "update"):
            old = (
                (r.read(f"{d.base}/{op.data.dest}") or b"").decode("utf-8", "replace")
                if op.action == "update"
                else ""
            )
            diff = difflib.unified_diff(
                old.splitlines(True),
                op.data.content.splitlines(True),
                f"a/{op.data.dest}",
                f"b/{op.data.dest}",
            )
            out[op.id] = mask("".join(diff), d.secrets)
    return out


def one_host(
    stack: stk.Stack, target: hosts.Target, opts: Options, event: Event, cancel: threading.Event
) -> HostResult:
    start = time.monotonic()
    done: list[OpResult] = []
    current: list[plan.Op] = []
    cx = None
    secrets: dict[str, str] = {}

    def on_op(op: plan.Op, phase: str) -> None:
        if cancel.is_set():
            raise RemoteError(target.name, op.id, "interrupted before this op")
        if phase == "start":
            current[:] = [op]
            event(target.name, f"{op.id} {op.action}")
        else:
            current.clear()
            done.append(OpResult(op.id, op.action, mask(op.detail, secrets), "changed"))
            event(target.name, f"{op.id} {op.action}: changed")

    try:
        event(target.name, "connecting")
        cx = connect.Remote(
            target.name,
            connect.connection(target.name, target.address, opts.accept_new, opts.connect_timeout),
            opts.command_timeout,
        )
        cx.open()
        event(target.name, "gathering facts")
        f = gather(cx, stack, target)
        d = desired.build(stack, target, opts.overrides, f)
        secrets = d.secrets
        ops = plan.plan(d, f, stack.name)
        busy = plan.port_conflicts(d, f)
        if busy and opts.dry_run:
            ops.insert(0, plan.Op("ports", "conflict", f"already in use: {', '.join(busy)}"))
        elif busy:
            raise RemoteError(
                target.name,
                "ports",
                f"already in use on the host: {', '.join(busy)}; nothing was started",
                hint="Stop what listens there, or move the service with --set NAME.port=N "
                "(`devkit provision --dry-run` lists the ports).",
            )
        if opts.dry_run:
            diffs = _diffs(cx, d, ops)
            planned = [
                OpResult(o.id, o.action, mask(o.detail, secrets), "planned", diffs.get(o.id, ""))
                for o in ops
            ]
            return HostResult(
                target.name,
                "planned" if ops else "unchanged",
                planned,
                None,
                time.monotonic() - start,
            )
        from devkit.provision import apply

        apply.apply(cx, d, f, ops, stack.name, on_op, opts.wheelhouse)
        status = "changed" if done else "unchanged"
        rows = None
        if done and opts.show_status:
            event(target.name, "checking health")
            rows = status_rows(stack, gather(cx, stack, target, "provisioned"))
        return HostResult(target.name, status, done, None, time.monotonic() - start, rows, d.notes)
    except (RemoteError, DevkitError) as exc:
        err = (
            exc
            if isinstance(exc, RemoteError)
            else RemoteError(target.name, "plan", exc.message, hint=exc.hint)
        )
        err = RemoteError(
            err.host,
            err.op,
            mask(err.detail, secrets),
            mask(err.cmd, secrets),
            err.rc,
            mask(err.stderr_tail, secrets),
            err.hint,
        )
        if current:
            done.append(
                OpResult(
                    current[0].id, current[0].action, mask(current[0].detail, secrets), "failed"
                )
            )
        event(target.name, f"failed: {err.op}: {err.detail}")
        return HostResult(target.name, "failed", done, err, time.monotonic() - start)
    finally:
        if cx is not None:
            cx.close()


def run(
    jobs: list[tuple[stk.Stack, hosts.Target]], opts: Options, event: Event
) -> list[HostResult]:
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, min(opts.parallel, len(jobs))))
    futures = [pool.submit(one_host, stack, t, opts, event, cancel) for stack, t in jobs]
    try:
        results = [fu.result() for fu in futures]
    except KeyboardInterrupt:
        # let each host finish its current op (writes are atomic), start no new one
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return results
