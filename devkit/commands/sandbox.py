"""devkit sandbox up [NAME] | down NAME | list | cache: local SSH hosts for trying stacks (and for tests)."""

from __future__ import annotations

import argparse
import sys

from devkit.errors import ExitCode


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    if path[1] == "up":
        parser.add_argument(
            "name", nargs="?", default="sandbox", help="sandbox name (default: sandbox)"
        )
        parser.add_argument(
            "--release",
            metavar="RELEASE",
            help="the Debian release of an isolated sandbox: trixie (the default) or bookworm",
        )
        parser.add_argument(
            "--isolation",
            metavar="KIND",
            help="full (the default as root: its own root filesystem and namespaces) or netns "
            "(only a network namespace; shares this machine's files, processes and packages)",
        )
    elif path[1] == "down":
        parser.add_argument("name", help="the sandbox to stop and remove")
    elif path[1] == "cache":
        parser.add_argument(
            "releases",
            nargs="*",
            metavar="RELEASE",
            help="build the root filesystems of these releases now if they are not cached",
        )
        parser.add_argument(
            "--clear", action="store_true", help="delete the cached roots no sandbox uses"
        )


def run(args: argparse.Namespace) -> int:
    sub = args.command[1]
    if sub == "up":
        return _up(args)
    if sub == "down":
        from devkit.sandbox import lifecycle as sandbox

        done = sandbox.down(args.name)
        sys.stdout.write(f"sandbox {args.name} removed\n")
        sys.stdout.write("".join(f"  {line}\n" for line in done))
        return ExitCode.OK
    if sub == "cache":
        return _cache(args)
    return _list()


def _up(args: argparse.Namespace) -> int:
    from devkit.sandbox import lifecycle as sandbox
    from devkit.sandbox import rootfs

    s = sandbox.up(args.name, release=args.release, isolation=args.isolation)
    where = f"{s.address}:{s.port}" if s.port != 22 else s.address
    if s.mode == sandbox.FULL:
        kind = f"isolated Debian {rootfs.RELEASES[s.release]} ({s.release})"
    elif s.mode == sandbox.NETNS:
        kind = "network namespace only: shares this machine's files, processes and packages"
    else:
        kind = "loopback sshd running as you: not isolated, shares this machine with you"
    sys.stdout.write(
        f"sandbox {s.name} is up: {s.user}@{where}, {kind} (sshd pid {s.pid})\n"
        f"  ssh config: {s.dir}/ssh_config (Included from your ssh config)\n"
        f"  next: devkit provision {s.name} && devkit status {s.name}\n"
    )
    return ExitCode.OK


def _list() -> int:
    from devkit.sandbox import lifecycle as sandbox

    boxes = sandbox.all_sandboxes()
    if not boxes:
        sys.stdout.write("no sandboxes; start one with `devkit sandbox up`\n")
        return ExitCode.OK
    rows = [("NAME", "MODE", "RELEASE", "ADDRESS", "STATE")]
    for s in boxes:
        where = f"{s.user}@{s.address}" + (f":{s.port}" if s.port != 22 else "")
        rows.append((s.name, s.mode, s.release or "(this machine)", where, sandbox.running(s)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
    return ExitCode.OK


def _cache(args: argparse.Namespace) -> int:
    from devkit.sandbox import lifecycle as sandbox
    from devkit.sandbox import rootfs

    for release in args.releases:
        rootfs.check_release(release)
    if args.releases:
        _build(args.releases)
    if args.clear:
        used = {s.base for s in sandbox.all_sandboxes()}
        for path, _ in rootfs.cached():
            if str(path) not in used and not rootfs.in_use(path):
                rootfs.remove(path)
                sys.stdout.write(f"removed {path}\n")
    for path, info in rootfs.cached():
        sys.stdout.write(
            f"{info.get('release')} {info.get('arch')} (Debian {info.get('version')}, "
            f"from {info.get('mirror')}, built {info.get('built')}): {path}\n"
        )
    return ExitCode.OK


def _build(releases: list[str]) -> None:
    """Build the missing roots side by side (debootstrap mostly waits on the network)."""
    from concurrent.futures import ThreadPoolExecutor

    from devkit.sandbox import rootfs

    with ThreadPoolExecutor(max_workers=len(releases)) as pool:
        for f in [pool.submit(rootfs.ensure, r) for r in dict.fromkeys(releases)]:
            f.result()
