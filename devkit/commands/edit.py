"""The edit loop: devkit restart --changed | watch | sync | code [HOST].

devkit restart --changed [HOST]   restart the services whose files changed since each started
devkit watch [HOST]               the watcher's log (it runs under the stack's supervisord)
devkit sync [HOST]                push this clone's branch and uncommitted work to the host's
                                  checkout, then restart what changed
devkit sync --watch [HOST]        the same for every save in this clone, until Ctrl-C (the host's
                                  watcher restarts what each push changed)
devkit code [HOST]                open the host's checkout in VS Code over SSH
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from devkit.commands import _hosts as seam
from devkit.errors import DevkitError, ExitCode
from devkit.provision.editloop import actions as editloop
from devkit.provision.kinds import edit as edit_kind
from devkit.provision.ssh import sshconf
from devkit.provision.ssh.connection import Connection


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    seam.add_common(parser)
    if path[0] == "sync":
        parser.add_argument(
            "--repo", metavar="DIR", help="the local clone to push (default: the one you are in)"
        )
        parser.add_argument(
            "--save-host-edits",
            action="store_true",
            help="first bring the edits made on the host into the local branch "
            "devkit/host-edits/HOST, then sync over them (nothing is lost)",
        )
        parser.add_argument(
            "--watch",
            action="store_true",
            help="push every save in this clone as it settles, until Ctrl-C; the host's watcher "
            "restarts what each push changed",
        )
    if path[0] == "restart":
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would restart, restart nothing"
        )


def connect(args: argparse.Namespace) -> tuple[Connection, str, dict[str, Any]]:
    """The connection to the host, its name, and where the stack is (the request the host side
    looks with: its base dir, or devkit's own folders there)."""
    h = seam.running(seam.resolve(seam.selection(args, [args.host] if args.host else [])))
    target = h.targets[0]
    conn: Connection = seam.connect(h, target, args)
    return conn, target.name, editloop.request(target, args.stack)


def locate(args: argparse.Namespace) -> editloop.Place:
    conn, host, req = connect(args)
    try:
        return editloop.locate(conn, host, req)
    except BaseException:
        conn.close()
        raise


def _say(host: str, lines: list[str]) -> None:
    for line in lines:
        sys.stdout.write(f"{host}: {line}\n")
    sys.stdout.flush()


def restart_changed(args: argparse.Namespace) -> int:
    if args.service:
        raise DevkitError(
            f"devkit restart --changed takes no service (got {args.service!r})",
            "It restarts exactly the services whose files changed; "
            f"`devkit restart {args.service}` restarts one.",
        )
    conn, host, req = connect(args)
    try:
        report = editloop.changed(conn, host, req, args.dry_run)
    finally:
        conn.close()
    _say(host, editloop.lines(host, report))
    return ExitCode.OK if editloop.ok(report) else ExitCode.VIOLATIONS


def watch(args: argparse.Namespace) -> int:
    place = locate(args)
    temporary = False
    try:
        temporary = editloop.ensure_watcher(place)
        if temporary:
            sys.stdout.write(
                f"{place.host}: the watcher is off in the stack (watch = false): running it under "
                "supervisord until you press Ctrl-C\n"
            )
        sys.stdout.write(
            f"{place.host}: the watcher's log ({place.layout.log(edit_kind.WATCHER)}); "
            "Ctrl-C stops showing it\n"
        )
        sys.stdout.flush()
        try:
            editloop.follow(place, sys.stdout)
        except KeyboardInterrupt:
            pass
    finally:
        if temporary:
            editloop.stop_temporary(place)
            sys.stdout.write(f"\n{place.host}: the watcher is stopped again\n")
        elif not temporary:
            sys.stdout.write(f"\n{place.host}: the watcher keeps running under supervisord\n")
        place.conn.close()
    return ExitCode.OK


def code(args: argparse.Namespace) -> int:
    place = locate(args)
    place.conn.close()
    alias = place.host
    known = sshconf.defined_elsewhere(alias) or alias in sshconf.written_hosts()
    if not known:
        sys.stdout.write(
            f"note: your ssh config has no Host {alias} yet: `devkit ssh-config {alias} --write` "
            "lets VS Code reach it by that name\n"
        )
    return editloop.open_code(alias, place.rules["checkout"], sys.stdout)


def sync_watch(args: argparse.Namespace) -> int:
    from devkit.provision.editloop import syncwatch
    from devkit.provision.transfer import gitpush

    if args.save_host_edits:
        raise DevkitError(
            "devkit sync --watch takes no --save-host-edits",
            "Run `devkit sync --save-host-edits` once, then `devkit sync --watch`.",
        )
    repo = gitpush.toplevel(Path(args.repo) if args.repo else Path.cwd())
    conn, host, req = connect(args)
    try:
        place = editloop.locate(conn, host, req)
        temporary = editloop.ensure_watcher(place)
        try:
            syncwatch.run(place, repo, req, lambda line: _say(host, [line]))
        except KeyboardInterrupt:
            pass
        finally:
            if temporary:
                editloop.stop_temporary(place)
    finally:
        conn.close()
    sys.stdout.write(f"\n{host}: stopped watching {repo}\n")
    return ExitCode.OK


def sync(args: argparse.Namespace) -> int:
    from devkit.provision.transfer import gitpush

    if args.watch:
        return sync_watch(args)
    repo = gitpush.toplevel(Path(args.repo) if args.repo else Path.cwd())
    conn, host, req = connect(args)
    try:
        result = gitpush.push(conn, repo, find=req, host=host, save_host_edits=args.save_host_edits)
    except gitpush.SyncRefused as exc:
        sys.stderr.write(f"devkit: {exc.message}\n    hint: {exc.hint}\n")
        return ExitCode.VIOLATIONS
    finally:
        conn.close()
    _say(host, gitpush.describe(result, host))
    report = result.then or {"error": "the host did not restart anything (no report)"}
    _say(host, editloop.lines(host, report))
    return ExitCode.OK if editloop.ok(report) else ExitCode.VIOLATIONS


def run(args: argparse.Namespace) -> int:
    verb = args.command[0]
    if verb == "watch":
        return watch(args)
    if verb == "code":
        return code(args)
    if verb == "sync":
        return sync(args)
    return restart_changed(args)
