"""devkit provision [HOST...] [--dry-run]: bring hosts to the stack's desired state over SSH."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devkit.commands import _hosts as seam
from devkit.errors import DevkitError, ExitCode
from devkit.provision.engine import hosts, report
from devkit.provision.engine import run as engine
from devkit.provision.ssh import client as ssh
from devkit.provision.stack import layout


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    seam.add_common(parser, many=True)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a stack variable for every host, e.g. --set postgres.port=15432",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan with diffs, change nothing"
    )
    parser.add_argument("--parallel", type=int, metavar="N", help="hosts at a time (default 8)")
    parser.add_argument(
        "--command-timeout",
        type=seam.seconds,
        help="seconds any one remote command may take (default 600)",
    )
    parser.add_argument(
        "--wheelhouse",
        metavar="DIR",
        help="a local directory of wheels for the stack's venvs: used offline first (filled from "
        "PyPI only with what is missing), uploaded once, installed with --no-index",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people, json for machines",
    )


def _wheelhouse(text: str | None) -> str:
    if not text:
        return ""
    wh = Path(text).expanduser()
    if not wh.is_dir():
        raise DevkitError(
            f"--wheelhouse {text}: not a directory",
            "Create it (it may be empty: devkit fills it from PyPI) or point at your wheels.",
        )
    return str(wh.resolve())


def _unknown_keys(args: argparse.Namespace) -> str:
    if not args.accept_new_host_key:
        return ssh.REFUSE
    return ssh.SESSION if args.dry_run else ssh.RECORD  # a dry run records nothing


def run(args: argparse.Namespace) -> int:
    sel = seam.selection(args, args.hosts)
    overrides = hosts.parse_set(args.set)
    wheelhouse = _wheelhouse(args.wheelhouse)  # checked on every path, a dry run's too
    h = seam.resolve(sel)
    if args.dry_run and h.sandbox:  # a dry run starts nothing
        return _dry_run_without_sandbox(args, h, overrides)
    h = seam.start_sandbox(h)
    stacks = seam.stacks(h)
    opts = engine.Options(overrides, args.dry_run, args.parallel or h.settings.parallel, wheelhouse)

    def connect(t: hosts.Target) -> ssh.SSHConnection:
        return seam.connect(h, t, args, _unknown_keys(args))

    tgts = h.targets
    jobs = [engine.Job(stacks[t.stack], t) for t in tgts]
    out = sys.stdout
    if args.format == "json":
        results = engine.run(jobs, opts, connect, lambda e: None)
        report.as_json(results, out)
    else:
        if out.isatty():
            with report.Live([t.name for t in tgts], out) as live:
                results = engine.run(jobs, opts, connect, live.emit)
        else:
            results = engine.run(jobs, opts, connect, report.plain(out))
        report.text(results, args.dry_run, out)
        if not args.dry_run:
            report.after(results, out)
    if any(r.status == "interrupted" for r in results):
        return ExitCode.INTERRUPTED
    return ExitCode.VIOLATIONS if any(r.status == "failed" for r in results) else ExitCode.OK


def _dry_run_without_sandbox(args: argparse.Namespace, h: seam.Hosts, overrides: dict) -> int:
    """A dry run starts nothing: it says what `up` would create, and plans for a fresh host."""
    from devkit.provision.engine import desired, facts, plan
    from devkit.provision.engine.events import HostResult, OpResult
    from devkit.provision.kinds.base import HostInfo
    from devkit.sandbox import lifecycle as sandbox

    t = h.targets[0]
    name, stack = t.name, seam.stacks(h)[t.stack]
    box = sandbox.describe_new(name)
    base = layout.default_base(stack.name, name, t.base_dir, True)
    host = HostInfo.assumed(box.user, base.replace("~", box.home, 1))._replace(
        uid=0 if box.user == "root" else os.getuid(), home=box.home
    )
    f = facts.fresh(host)
    d = desired.build(stack, t, overrides, f, new_secret=lambda n: "x" * n)
    ops = plan.plan(d, f)
    head = (
        f"the sandbox host is not running: `devkit provision` would start it ({box.what}), "
        f"then run {len(ops)} op(s) on it"
    )
    if args.format == "json":
        planned = [OpResult(op.id, op.action, op.detail, "planned") for op in ops]
        report.as_json([HostResult(name, "planned", planned, None, 0.0)], sys.stdout, note=head)
        return ExitCode.OK
    sys.stdout.write(f"{name}: {head}:\n")
    for op in ops:
        sys.stdout.write(f"  {op.id:<28} {op.action:<8} {op.detail}\n")
    sys.stdout.write("(dry run: nothing was started, written or changed)\n")
    return ExitCode.OK
