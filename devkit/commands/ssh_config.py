"""devkit ssh-config HOST: a complete ssh_config Host block (for VSCode Remote-SSH) with LocalForwards."""

from __future__ import annotations

import argparse
import sys

from devkit.errors import ExitCode


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "host",
        nargs="?",
        metavar="HOST",
        help="an ssh_config alias, [user@]host[:port] or a sandbox name (default: the sandbox host)",
    )
    parser.add_argument(
        "--stack", help="the stack whose ports to forward (default: the host's stack)"
    )
    parser.add_argument("--alias", help="the Host name to write (default: HOST)")
    parser.add_argument(
        "--no-forwards", action="store_true", help="leave out the LocalForward lines"
    )
    parser.add_argument(
        "--config", metavar="PYPROJECT", help="the pyproject.toml with [tool.devkit]"
    )


def run(args: argparse.Namespace) -> int:
    from devkit.provision import connect, desired, facts, hosts, targets
    from devkit.provision import stack as stk

    args.base_dir = None
    _, [target, *_] = targets.resolve(args, [args.host] if args.host else [], start_sandbox=False)
    lookup = connect.ssh_config().lookup(hosts.parse_address(target.address).host)
    addr = hosts.parse_address(target.address)
    user = addr.user or lookup.get("user") or _me()
    port = addr.port or int(lookup.get("port", 22))
    lines = [
        f"Host {args.alias or target.name}",
        f"  HostName {lookup.get('hostname', addr.host)}",
        f"  Port {port}",
        f"  User {user}",
    ]
    for key in lookup.get("identityfile", []):
        lines.append(f"  IdentityFile {key}")
    if lookup.get("identityfile"):
        lines.append("  IdentitiesOnly yes")
    if "userknownhostsfile" in lookup:
        lines.append(f"  UserKnownHostsFile {lookup['userknownhostsfile']}")
    lines.append("  StrictHostKeyChecking yes")
    if "proxyjump" in lookup:
        lines.append(f"  ProxyJump {lookup['proxyjump']}")
    if not args.no_forwards:
        stack = stk.load(target.stack)
        stand_in = facts.Facts(
            user, 1000, "/home", "/base", {}, None, {}, {}, {}, {}, {}, [], {}, [], {}, {}, {}, None
        )
        d = desired.build(stack, target, {}, stand_in, new_secret=lambda n: "")
        for p in d.ports:
            if p.forward:
                lines.append(f"  LocalForward {p.port} 127.0.0.1:{p.port}")
    sys.stdout.write("\n".join(lines) + "\n")
    return ExitCode.OK


def _me() -> str:
    import getpass

    return getpass.getuser()
