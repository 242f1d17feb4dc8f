"""devkit status | start | stop | restart | logs | teardown HOST: operate a provisioned stack.

Everything goes through the host's supervisord (supervisorctl -c over SSH); nothing is found or killed
by process name.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import PurePosixPath
from typing import Any

from devkit.errors import DevkitError, ExitCode


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    from devkit.provision import targets

    targets.add_common(parser)
    verb = path[0]
    if verb in ("start", "stop", "restart"):
        parser.add_argument("service", nargs="?", help="one service (default: all)")
    elif verb == "logs":
        parser.add_argument("service", nargs="?", help="the service whose log to show")
        parser.add_argument("-f", "--follow", action="store_true", help="keep streaming new lines")
        parser.add_argument(
            "-n", "--lines", type=int, default=50, metavar="N", help="lines to show (default 50)"
        )
    elif verb == "teardown":
        parser.add_argument(
            "--purge", action="store_true", help="also delete the base dir (data, secrets, logs)"
        )
    if verb == "status":
        parser.add_argument("--format", choices=("text", "json"), default="text")


def _session(args: argparse.Namespace, health: bool = False) -> tuple[Any, Any, Any, Any]:
    from devkit.provision import connect, runner, targets
    from devkit.provision import stack as stk

    ps, [target, *_] = targets.resolve(args, [args.host] if args.host else [], start_sandbox=False)
    stack = stk.load(target.stack)
    r = connect.Remote(
        target.name,
        connect.connection(
            target.name,
            target.address,
            args.accept_new_host_key,
            args.connect_timeout or ps.connect_timeout,
        ),
        ps.command_timeout,
    )
    r.open()
    # health checks as provisioned (rendered with that run's variables), read on the host
    f = runner.gather(r, stack, target, "provisioned" if health else None)
    if (f.base_marker or "").strip() != stack.name:
        r.close()
        raise DevkitError(
            f"{target.name}: no {stack.name} stack at {f.base}",
            f"Provision it first: devkit provision {target.name}",
        )
    return r, stack, target, f


def status(args: argparse.Namespace) -> int:
    from devkit.provision import report, runner

    r, stack, target, f = _session(args, health=True)
    try:
        rows = runner.status_rows(stack, f)
        for x in rows:
            if x["state"] in CRASHED:
                log = shlex.quote(f"{f.base}/logs/{x['service']}.log")
                x["log_tail"] = r.run(f"tail -n 8 -- {log}", "status", check=False).stdout
    finally:
        r.close()
    sv = f.supervisor
    ok = report.all_ok(sv, rows)
    if args.format == "json":
        json.dump(
            {
                "host": target.name,
                "base": f.base,
                "supervisord": {"running": sv["running"], "pid": sv["pid"]},
                "services": rows,
                "ok": ok,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        report.status_table(target.name, stack.name, f.base, sv, rows, sys.stdout)
    return ExitCode.OK if ok else ExitCode.VIOLATIONS


CRASHED = ("FATAL", "BACKOFF", "EXITED")


def _ordered_start(base: str, stack: Any, programs: dict[str, Any], health: dict[str, str]) -> str:
    """Start every program, in priority order, each healthy before the next (as provision does)."""
    from devkit.provision import apply, desired, plan

    progs = [
        desired.DProgram(s.name, health.get(s.name, ""), "", s.program.priority)
        for s in stack.services
        if s.name in programs
    ]
    return (
        " && ".join(apply.start_program(base, p, "ensure") for p in plan.ordered(progs)) or "true"
    )


def control(args: argparse.Namespace) -> int:
    from devkit.provision import apply, desired, supervisor

    r, stack, target, f = _session(args)
    try:
        if not f.supervisor["running"]:
            raise DevkitError(
                f"{target.name}: supervisord is not running",
                f"Start everything with: devkit provision {target.name}",
            )
        names = [s.name for s in stack.services]
        if args.service and args.service not in names:
            raise DevkitError(
                f"{target.name}: no service {args.service!r}", f"Services: {', '.join(names)}."
            )
        if args.service and args.service not in f.supervisor["programs"]:
            raise DevkitError(f"{target.name}: {args.service!r} does not run on this host")
        verb = args.command[0]
        health: dict[str, str] = {}
        if verb != "stop":
            try:
                raw = r.read(f"{f.base}/{desired.SERVICES}") or b"{}"
                health = json.loads(raw).get("health", {})
            except ValueError:
                health = {}
        if verb == "stop":
            cmd = supervisor.ctl(f.base, "stop", args.service or "all")
        elif args.service:
            prio = next(s.program.priority for s in stack.services if s.name == args.service)
            p = desired.DProgram(args.service, health.get(args.service, ""), "", prio)
            cmd = apply.start_program(f.base, p, "ensure" if verb == "start" else verb)
        else:
            start = _ordered_start(f.base, stack, f.supervisor["programs"], health)
            stop = (
                f"{supervisor.ctl(f.base, 'stop', 'all')} >/dev/null && "
                if verb == "restart"
                else ""
            )
            cmd = stop + start
        res = r.run(cmd, verb, check=False)
        if res.rc != 0:
            sys.stderr.write(res.stderr)
            return ExitCode.VIOLATIONS
        what = {"stop": "stopped", "start": "started", "restart": "restarted"}[verb]
        if verb != "stop":
            what += " and healthy"
        sys.stdout.write(f"{target.name}: {args.service or 'all services'} {what}\n")
    finally:
        r.close()
    return ExitCode.OK


def logs(args: argparse.Namespace) -> int:
    r, stack, target, f = _session(args)
    try:
        if args.service not in [s.name for s in stack.services]:
            raise DevkitError(
                f"{target.name}: no service {args.service!r}",
                f"Services: {', '.join(s.name for s in stack.services)}.",
            )
        log = shlex.quote(f"{f.base}/logs/{args.service}.log")
        cmd = f"tail -n {int(args.lines)} {'-F' if args.follow else ''} -- {log}"
        # a pty for -f so the remote tail dies with the session when you press Ctrl-C
        return (
            ExitCode.OK if r.stream(cmd, sys.stdout, pty=args.follow) == 0 else ExitCode.VIOLATIONS
        )
    finally:
        r.close()


def teardown(args: argparse.Namespace) -> int:
    from devkit.provision import mounts, supervisor

    r, stack, target, f = _session(args)
    try:
        r.run(supervisor.shutdown(f.base), "teardown")
        sys.stdout.write(f"{target.name}: stopped supervisord and every service\n")
        gone = r.run(mounts.unmount_under(f.base, f.uid == 0), "unmount").stdout.split()
        if gone:
            sys.stdout.write(f"{target.name}: unmounted {len(gone)} mount(s) left under {f.base}\n")
        if args.purge:
            base = shlex.quote(f.base)
            # the marker check guards against ever deleting a directory devkit did not create
            r.run(
                f'test "$(cat {shlex.quote(f.base + "/.devkit-stack")})" = {shlex.quote(stack.name)} && '
                f"rm -rf -- {base}{_rmdir_devkit_parent(f.base)}",
                "purge",
            )
            sys.stdout.write(f"{target.name}: removed {f.base}\n")
    finally:
        r.close()
    return ExitCode.OK


def _rmdir_devkit_parent(base: str) -> str:
    """A shell suffix that also removes devkit's own per-host folder above a default base dir
    (~/.devkit/<sandbox>/<stack>) once it is empty; folders the user chose are left alone."""
    parent = PurePosixPath(base).parent
    if ".devkit" not in parent.parts[:-1] and parent.name != ".devkit":
        return ""
    return f" && {{ rmdir -- {shlex.quote(str(parent))} 2>/dev/null || true; }}"


def _host_or_service(args: argparse.Namespace) -> None:
    """`devkit restart manager` and `devkit logs manager` name a service of the default host: one
    word that is a service of the stack, and not a host devkit knows, is taken as the service."""
    if not args.host or getattr(args, "service", "absent") is not None:
        return
    from devkit import config
    from devkit.provision import hosts, sandbox
    from devkit.provision import stack as stk

    settings = config.load(None, getattr(args, "config", None))
    ps = hosts.provision_settings(settings.extra, settings.source)
    known = {
        *ps.hosts,
        *(settings.extra.get("hosts") or {}),
        *(b.name for b in sandbox.all_sandboxes()),
    }
    if args.host in known:
        return
    try:
        services = {s.name for s in stk.load(args.stack or ps.stack).services}
    except DevkitError:
        return
    if args.host in services:
        args.host, args.service = None, args.host


def run(args: argparse.Namespace) -> int:
    verb = args.command[0]
    _host_or_service(args)
    if verb == "logs" and not args.service:
        raise DevkitError(
            "which service's log? e.g. `devkit logs manager` or `devkit logs HOST manager`"
        )
    if verb == "status":
        return status(args)
    if verb == "logs":
        return logs(args)
    if verb == "teardown":
        return teardown(args)
    return control(args)
