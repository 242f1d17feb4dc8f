"""devkit provision [HOST...] [--dry-run]: bring hosts to the stack's desired state over SSH."""

from __future__ import annotations

import argparse
import sys

from devkit.errors import ExitCode


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    from devkit.provision import targets

    targets.add_common(parser, many=True)
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
        type=float,
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


def run(args: argparse.Namespace) -> int:
    from devkit.provision import hosts, report, runner, targets
    from devkit.provision import stack as stk

    ps, tgts = targets.resolve(args, args.hosts)
    overrides = hosts.parse_set(args.set)
    stacks = {name: stk.load(name) for name in dict.fromkeys(t.stack for t in tgts)}
    for t in tgts:  # undefined variables and bad templates fail here, before any connection
        runner.preflight(stacks[t.stack], t, overrides)
    wheelhouse = ""
    if args.wheelhouse:
        from pathlib import Path

        from devkit.errors import DevkitError

        wh = Path(args.wheelhouse).expanduser()
        if not wh.is_dir():
            raise DevkitError(
                f"--wheelhouse {args.wheelhouse}: not a directory",
                "Create it (it may be empty: devkit fills it from PyPI) or point at your wheels.",
            )
        wheelhouse = str(wh.resolve())
    opts = runner.Options(
        overrides,
        args.dry_run,
        args.accept_new_host_key,
        args.parallel or ps.parallel,
        args.connect_timeout or ps.connect_timeout,
        args.command_timeout or ps.command_timeout,
        wheelhouse,
        show_status=args.format == "text",
    )
    jobs = [(stacks[t.stack], t) for t in tgts]
    out = sys.stdout
    if args.format == "json":
        results = runner.run(jobs, opts, lambda h, t: None)
        report.as_json(results, out)
    else:
        if out.isatty():
            with report.Live([t.name for t in tgts], out) as live:
                results = runner.run(jobs, opts, live.event)
        else:
            results = runner.run(jobs, opts, report.plain_event(out))
        report.text(results, args.dry_run, out)
        if not args.dry_run:
            report.after(results, out)
    return ExitCode.VIOLATIONS if any(r.status == "failed" for r in results) else ExitCode.OK
