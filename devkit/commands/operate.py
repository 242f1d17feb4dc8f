"""devkit status | start | stop | restart | logs | teardown [HOST] [SERVICE]: operate a stack."""

from __future__ import annotations

import argparse
import json
import sys

from devkit.errors import DevkitError, ExitCode
from devkit.provision import operate, report, sandbox, ssh, targets
from devkit.provision import stack as stk


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
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


def _open(args: argparse.Namespace, health: bool = False) -> operate.Deployment:
    sel = targets.selection(args, [args.host] if args.host else [])
    ps, [target, *_] = targets.resolve(sel, start_sandbox=False)
    stack = stk.load(target.stack)
    conn = ssh.connect(
        target.name,
        target.address,
        ssh.RECORD if args.accept_new_host_key else ssh.REFUSE,
        args.connect_timeout or ps.connect_timeout,
        ps.command_timeout,
    )
    try:
        return operate.find(conn, stack, target, health)
    except BaseException:
        conn.close()
        raise


def status(args: argparse.Namespace) -> int:
    dep = _open(args, health=True)
    try:
        rows = operate.status(dep)
    finally:
        dep.conn.close()
    pf = dep.programs
    ok = operate.all_ok(dep, rows)
    if args.format == "json":
        data = {
            "host": dep.target.name,
            "base": dep.layout.base,
            "supervisord": {"running": pf.running, "pid": pf.pid},
            "services": [
                {k: v for k, v in r._asdict().items() if k != "log_tail" or v} for r in rows
            ],
            "ok": ok,
        }
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        head = f"supervisord pid {pf.pid}" if pf.running else "supervisord is not running"
        sys.stdout.write(f"{dep.target.name}: {dep.stack.name} at {dep.layout.base} ({head})\n")
        report.status_table(rows, sys.stdout)
    return ExitCode.OK if ok else ExitCode.VIOLATIONS


def control(args: argparse.Namespace) -> int:
    verb = args.command[0]
    dep = _open(args)
    try:
        ok, err = operate.control(dep, verb, args.service)
    finally:
        dep.conn.close()
    if not ok:
        sys.stderr.write(err)
        return ExitCode.VIOLATIONS
    what = {"stop": "stopped", "start": "started", "restart": "restarted"}[verb]
    if verb != "stop":
        what += " and healthy"
    sys.stdout.write(f"{dep.target.name}: {args.service or 'all services'} {what}\n")
    return ExitCode.OK


def logs(args: argparse.Namespace) -> int:
    dep = _open(args)
    try:
        rc = operate.logs(dep, args.service, args.lines, args.follow, sys.stdout)
    finally:
        dep.conn.close()
    return ExitCode.OK if rc == 0 else ExitCode.VIOLATIONS


def teardown(args: argparse.Namespace) -> int:
    dep = _open(args)
    try:
        for line in operate.teardown(dep, args.purge):
            sys.stdout.write(line + "\n")
    finally:
        dep.conn.close()
    return ExitCode.OK


def _host_or_service(args: argparse.Namespace) -> None:
    """`devkit restart manager` and `devkit logs manager` name a service of the default host: one
    word that is a service of the stack, and not a host devkit knows, is taken as the service."""
    if not args.host or getattr(args, "service", "absent") is not None:
        return
    settings, ps = targets.settings(targets.selection(args, []))
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
