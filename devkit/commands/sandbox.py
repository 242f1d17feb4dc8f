"""devkit sandbox up [NAME] | down NAME | list: local SSH hosts for trying stacks (and for the tests)."""

from __future__ import annotations

import argparse
import sys

from devkit.errors import ExitCode


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    if path[1] == "up":
        parser.add_argument(
            "name", nargs="?", default="sandbox", help="sandbox name (default: sandbox)"
        )
    elif path[1] == "down":
        parser.add_argument("name", help="the sandbox to stop and remove")


def run(args: argparse.Namespace) -> int:
    from devkit.provision import sandbox

    sub = args.command[1]
    if sub == "up":
        s = sandbox.up(args.name)
        where = f"{s.address}:{s.port}" if s.port != 22 else s.address
        sys.stdout.write(
            f"sandbox {s.name} is up: {s.user}@{where} ({s.mode}, sshd pid {s.pid})\n"
            f"  ssh config: {s.dir}/ssh_config (Included from your ssh config)\n"
            f"  next: devkit provision {s.name} && devkit status {s.name}\n"
        )
    elif sub == "down":
        sandbox.down(args.name)
        sys.stdout.write(f"sandbox {args.name} removed\n")
    else:
        boxes = sandbox.all_sandboxes()
        if not boxes:
            sys.stdout.write("no sandboxes; start one with `devkit sandbox up`\n")
        for s in boxes:
            state = "running" if sandbox.alive(s.pid) else "stopped"
            sys.stdout.write(f"{s.name}\t{s.user}@{s.address}:{s.port}\t{s.mode}\t{state}\n")
    return ExitCode.OK
