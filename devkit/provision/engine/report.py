"""Reporting a run: progress lines (or a rich live display on a TTY), the per-host summary, the
status table, or JSON."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from devkit.provision.engine.events import Emit, Event, HostResult, ServiceStatus

_lock = threading.Lock()


def _worth_a_line(e: Event) -> bool:
    return e.what in ("changed", "failed")


def plain(stream: TextIO) -> Emit:
    def emit(e: Event) -> None:
        if _worth_a_line(e):
            with _lock:
                stream.write(f"{e.host}: {e.line()}\n")
                stream.flush()

    return emit


class Live:
    """A rich progress line per host while the run lasts (only on a TTY)."""

    def __init__(self, hosts: list[str], stream: TextIO) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[host]}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self.tasks = {h: self.progress.add_task("waiting", host=h, total=None) for h in hosts}

    def __enter__(self) -> Live:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def emit(self, e: Event) -> None:
        self.progress.update(self.tasks[e.host], description=e.line())
        if _worth_a_line(e):
            self.progress.console.print(f"{e.host}: {e.line()}", highlight=False, markup=False)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def text(results: list[HostResult], dry_run: bool, stream: TextIO) -> None:
    if dry_run:
        for r in results:
            if r.error is None:
                stream.write(
                    f"{r.host}: {len(r.ops)} op(s) would change something\n"
                    if r.ops
                    else f"{r.host}: up to date, nothing to do\n"
                )
            for op in r.ops:
                stream.write(f"  {op.id:<28} {op.action:<8} {op.detail}\n")
                if op.diff:
                    stream.write("".join(f"    {line}" for line in op.diff.splitlines(True)))
                    if not op.diff.endswith("\n"):
                        stream.write("\n")
    width = max(len(r.host) for r in results)
    stream.write("\nsummary:\n")
    for r in results:
        n = sum(op.status == "changed" for op in r.ops)
        what = {
            "changed": f"changed ({_plural(n, 'op')})",
            "unchanged": "unchanged (nothing to do)",
            "planned": f"would change ({_plural(len(r.ops), 'op')})",
            "failed": "FAILED",
            "interrupted": f"INTERRUPTED after {_plural(n, 'op')}",
        }[r.status]
        stream.write(f"  {r.host.ljust(width)}  {what}  {r.seconds:.1f}s\n")
        e = r.error
        if e is None:
            continue
        stream.write(f"    op: {e.op}: {e.detail}\n")
        if e.cmd:
            stream.write(f"    command: {e.cmd if len(e.cmd) < 300 else e.cmd[:300] + ' ...'}\n")
        if e.rc is not None:
            stream.write(f"    exit code: {e.rc}\n")
        if e.stderr_tail:
            stream.write(
                "    stderr:\n" + "".join(f"      {x}\n" for x in e.stderr_tail.splitlines())
            )
        if e.hint:
            stream.write(f"    hint: {e.hint}\n")


def _uptime(seconds: int) -> str:
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def edit_latency(e: dict[str, Any] | None) -> str:
    """A service's edit-to-serving times, for the status table (pure)."""
    if not e:
        return "-"
    return f"{e['last']:.1f} s (p50 {e['p50']:.1f}, p95 {e['p95']:.1f}, {e['count']} edits)"


def status_table(rows: list[ServiceStatus], stream: TextIO) -> None:
    """The services' table; with an EDIT→SERVING column once the edit loop restarted one."""
    width = max([12, *(len(x.service) for x in rows)])
    edits = any(x.edit for x in rows)
    health_w = max([6, *(len(_health(x)) for x in rows)]) if edits else 0
    head = f"  {'SERVICE':<{width}} {'STATE':<9} {'PID':>7}  {'UPTIME':>7}  "
    head += f"{'HEALTH':<{health_w}}  EDIT→SERVING" if edits else "HEALTH"
    stream.write(head.rstrip() + "\n")
    for x in rows:
        health = _health(x)
        up = _uptime(x.uptime) if x.state == "RUNNING" else "-"
        line = f"  {x.service:<{width}} {x.state:<9} {x.pid or '-':>7}  {up:>7}  "
        line += f"{health:<{health_w}}  {edit_latency(x.edit)}" if edits else health
        stream.write(line + "\n")
        for ln in x.log_tail.rstrip().splitlines():
            stream.write(f"      | {ln}\n")


def _health(x: ServiceStatus) -> str:
    health = {True: "ok", False: "FAILING", None: "-"}[x.healthy]
    if x.healthy is False and x.health_output:
        health += f" ({x.health_output.splitlines()[-1][:60]})"
    return health


def after(results: list[HostResult], stream: TextIO) -> None:
    """Per host that was provisioned: the status table (when the run changed it, also when a
    service was not healthy at its end) and, when it succeeded, the notes."""
    for r in results:
        if r.services is not None:
            stream.write(f"\n{r.host}:\n")
            status_table(r.services, stream)
        if r.error is None and r.notes:
            stream.write("\n" + r.notes.rstrip() + "\n")


def result_json(r: HostResult) -> dict[str, Any]:
    e = r.error
    return {
        "host": r.host,
        "status": r.status,
        "seconds": round(r.seconds, 3),
        "ops": [op._asdict() for op in r.ops],
        "services": None if r.services is None else [x._asdict() for x in r.services],
        "error": None
        if e is None
        else {
            "op": e.op,
            "message": e.detail,
            "command": e.cmd,
            "exit_code": e.rc,
            "stderr_tail": e.stderr_tail,
            "hint": e.hint,
        },
    }


def as_json(results: list[HostResult], stream: TextIO = sys.stdout, note: str = "") -> None:
    data: dict[str, Any] = {
        "ok": all(r.status not in ("failed", "interrupted") for r in results),
        "hosts": [result_json(r) for r in results],
    }
    if note:  # what the run did instead (a dry run with no sandbox started)
        data["note"] = note
    json.dump(data, stream, indent=2)
    stream.write("\n")
