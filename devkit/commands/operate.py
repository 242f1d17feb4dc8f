"""devkit status | start | stop | restart | logs | teardown [HOST] [SERVICE]: operate a stack."""

from __future__ import annotations

import argparse
import json
import sys

from devkit.commands import _hosts as seam
from devkit.errors import DevkitError, ExitCode
from devkit.provision.engine import hosts, operate, report
from devkit.provision.kinds import registry
from devkit.sandbox import lifecycle as sandbox


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    verb = path[0]
    seam.add_common(parser, many=verb == "status")
    if verb in ("start", "stop", "restart"):
        parser.add_argument("service", nargs="?", help="one service (default: all)")
    if verb == "restart":
        parser.add_argument(
            "--changed",
            action="store_true",
            help="restart exactly the services whose files in the checkout changed since each "
            "started (a stack with an [edit] group)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="with --changed: say what would restart"
        )
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


def _open_all(
    args: argparse.Namespace, health: bool = False, target: hosts.Target | None = None
) -> list[operate.Deployment]:
    """Every stack devkit provisioned on the host (or the one --stack / --base-dir names): the host
    given, else the one named (a cluster lists its manager host first), else the first."""
    named = getattr(args, "host", None)
    names = list(getattr(args, "hosts", None) or ([named] if named else []))
    h = seam.running(seam.resolve(seam.selection(args, names)))
    if target is None:
        target = next((t for t in h.targets if t.name == named), h.targets[0])
    conn = seam.connect(h, target, args)
    try:
        found = operate.choose(operate.inventory(conn, target), target, args.stack)
        return [
            operate.find(conn, operate.load_found(f), target._replace(base_dir=f.base), health)
            for f in found
        ]
    except BaseException:
        conn.close()
        raise


def _open(
    args: argparse.Namespace, health: bool = False, target: hosts.Target | None = None
) -> operate.Deployment:
    deps = _open_all(args, health, target)
    if len(deps) > 1:
        deps[0].conn.close()
        where = ", ".join(f"{d.stack.name} at {d.layout.base}" for d in deps)
        raise DevkitError(
            f"{deps[0].target.name}: several stacks: {where}",
            "Say which with --stack NAME (or --base-dir DIR).",
        )
    return deps[0]


def status(args: argparse.Namespace) -> int:
    """One host's stacks; for several hosts (a cluster: with its manager host's view of every
    agent) each in turn."""
    tgts = seam.running(seam.resolve(seam.selection(args, args.hosts))).targets
    if len(tgts) > 1 or any(t.role for t in tgts):
        return _cluster_status(args, tgts)
    ok, data = _host_status(args, tgts[0])
    if args.format == "json":
        json.dump(data[0] if len(data) == 1 else {"stacks": data, "ok": ok}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return ExitCode.OK if ok else ExitCode.VIOLATIONS


def _host_status(args: argparse.Namespace, target: hosts.Target) -> tuple[bool, list[dict]]:
    """The host's tables printed (text), or returned (json)."""
    deps = _open_all(args, health=True, target=target)
    try:
        tables = [(dep, operate.status(dep)) for dep in deps]
    finally:
        deps[0].conn.close()
    ok = all(operate.all_ok(dep, rows) for dep, rows in tables)
    if args.format == "json":
        return ok, [_status_json(dep, rows) for dep, rows in tables]
    for dep, rows in tables:
        pf = dep.programs
        head = f"supervisord pid {pf.pid}" if pf.running else "supervisord is not running"
        sys.stdout.write(f"{dep.target.name}: {dep.stack.name} at {dep.layout.base} ({head})\n")
        report.status_table(rows, sys.stdout)
        if not pf.running:
            sys.stdout.write(f"  {operate.down_note(dep)}\n")
        for line in operate.notes(dep.facts):
            sys.stdout.write(f"  {line}\n")
    return ok, []


def _cluster_status(args: argparse.Namespace, tgts: list[hosts.Target]) -> int:
    results, manager = [], next((t for t in tgts if t.role == "manager"), None)
    for t in tgts:
        if args.format == "text" and results:
            sys.stdout.write("\n")
        results.append(_host_status(args, t))
    members = operate.Members([], True)
    if manager is not None:
        dep = _open(args, target=manager)
        try:
            members = operate.cluster_members(dep)
        finally:
            dep.conn.close()
    ok = all(o for o, _ in results) and members.ok
    if args.format == "json":
        data = {
            "hosts": [d[0] if len(d) == 1 else {"stacks": d} for _, d in results],
            "cluster": None
            if manager is None
            else {"manager": manager.name, "members": members.lines, "ok": members.ok},
            "ok": ok,
        }
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif manager is not None:
        sys.stdout.write(f"\ncluster: the agents {manager.name}'s manager knows\n")
        for line in members.lines:
            sys.stdout.write(f"  {line}\n")
    return ExitCode.OK if ok else ExitCode.VIOLATIONS


def _status_json(dep: operate.Deployment, rows: list) -> dict:
    pf = dep.programs
    data = {
        "host": dep.target.name,
        "stack": dep.stack.name,
        "base": dep.layout.base,
        "supervisord": {"running": pf.running, "pid": pf.pid},
        "services": [{k: v for k, v in r._asdict().items() if k != "log_tail" or v} for r in rows],
        "notes": operate.notes(dep.facts),
        "ok": operate.all_ok(dep, rows),
    }
    if not pf.running:
        data["note"] = operate.down_note(dep)
    return data


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
    if not getattr(args, "host", None) or getattr(args, "service", "absent") is not None:
        return
    _, hc = seam.configured(seam.selection(args, []))
    ps = hc.settings
    known = {*ps.hosts, *hc.tables, *(b.name for b in sandbox.all_sandboxes())}
    if args.host in known:
        return
    try:
        services = {s.name for s in registry.load_stack(args.stack or ps.stack).services}
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
    if verb == "restart" and args.changed:
        from devkit.commands import edit

        return edit.restart_changed(args)
    if getattr(args, "dry_run", False):
        raise DevkitError("--dry-run goes with --changed", "devkit restart --changed --dry-run")
    return control(args)
