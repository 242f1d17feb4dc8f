"""devkit status | start | stop | restart | logs | teardown HOST: operate a provisioned stack.

Everything goes through the host's supervisord (supervisorctl -c over SSH); nothing is found or killed
by process name.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from devkit.errors import DevkitError, ExitCode


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    from devkit.provision import targets

    targets.add_common(parser)
    verb = path[0]
    if verb in ("start", "stop", "restart"):
        parser.add_argument("service", nargs="?", help="one service (default: all)")
    elif verb == "logs":
        parser.add_argument("service", help="the service whose log to show")
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

    ps, [target] = targets.resolve(args, [args.host])
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


def _uptime(seconds: int) -> str:
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def status(args: argparse.Namespace) -> int:
    r, stack, target, f = _session(args, health=True)
    r.close()
    sv = f.supervisor
    rows = []
    for s in stack.services:
        info = sv["programs"].get(s.name, {})
        h = f.health.get(s.name)
        rows.append(
            {
                "service": s.name,
                "state": info.get("state", "STOPPED" if sv["running"] else "NOT RUNNING"),
                "pid": info.get("pid") or None,
                "uptime": info.get("uptime", 0),
                "healthy": None if h is None else h["ok"],
                "health_output": (h or {}).get("output", "").strip(),
            }
        )
    ok = sv["running"] and all(
        x["state"] in ("RUNNING", "STARTING") and x["healthy"] is not False for x in rows
    )
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
        head = f"supervisord pid {sv['pid']}" if sv["running"] else "supervisord is not running"
        sys.stdout.write(f"{target.name}: {stack.name} at {f.base} ({head})\n")
        sys.stdout.write(f"  {'SERVICE':<12} {'STATE':<12} {'PID':>7}  {'UPTIME':>8}  HEALTH\n")
        for x in rows:
            health = {True: "ok", False: "FAILING", None: "-"}[x["healthy"]]
            if x["healthy"] is False and x["health_output"]:
                health += f" ({x['health_output'].splitlines()[-1][:60]})"
            up = _uptime(x["uptime"]) if x["state"] == "RUNNING" else "-"
            sys.stdout.write(
                f"  {x['service']:<12} {x['state']:<12} {x['pid'] or '-':>7}  {up:>8}  {health}\n"
            )
    return ExitCode.OK if ok else ExitCode.VIOLATIONS


def control(args: argparse.Namespace) -> int:
    from devkit.provision import supervisor

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
        res = r.run(
            supervisor.ctl(f.base, args.command[0], args.service or "all"),
            args.command[0],
            check=False,
        )
        sys.stdout.write(res.stdout)
        if res.rc != 0:
            sys.stderr.write(res.stderr)
            return ExitCode.VIOLATIONS
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
    from devkit.provision import supervisor

    r, stack, target, f = _session(args)
    try:
        r.run(supervisor.shutdown(f.base), "teardown")
        sys.stdout.write(f"{target.name}: stopped supervisord and every service\n")
        if args.purge:
            base = shlex.quote(f.base)
            # the marker check guards against ever deleting a directory devkit did not create
            r.run(
                f'test "$(cat {shlex.quote(f.base + "/.devkit-stack")})" = {shlex.quote(stack.name)} && '
                f"rm -rf -- {base}",
                "purge",
            )
            sys.stdout.write(f"{target.name}: removed {f.base}\n")
    finally:
        r.close()
    return ExitCode.OK


def run(args: argparse.Namespace) -> int:
    verb = args.command[0]
    if verb == "status":
        return status(args)
    if verb == "logs":
        return logs(args)
    if verb == "teardown":
        return teardown(args)
    return control(args)
