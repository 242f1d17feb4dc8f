"""devkit ssh-config HOST: a complete ssh_config Host block (for VSCode Remote-SSH) with LocalForwards."""

from __future__ import annotations

import argparse
import getpass
import sys

from devkit.errors import ExitCode
from devkit.provision import desired, facts, hosts, ssh, targets
from devkit.provision import stack as stk
from devkit.provision.resources import programs
from devkit.provision.resources.base import HostInfo


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


def forwarded_ports(stack: stk.Stack, target: hosts.Target, user: str) -> list[int]:
    """The ports the stack forwards, rendered with the host's variables (no connection needed)."""
    f = facts.fresh(HostInfo.assumed(user))
    d = desired.build(stack, target, {}, f, new_secret=lambda n: "")
    return [p.port for p in d.of(programs.NAME).ports if p.forward]


def run(args: argparse.Namespace) -> int:
    sel = targets.Selection((args.host,) if args.host else (), args.stack, None, args.config)
    _, [target, *_] = targets.resolve(sel, start_sandbox=False)
    user_at, host, port = ssh.split_hop(target.address)
    opts = ssh.resolve(host, user_at, port)
    lines = [
        f"Host {args.alias or target.name}",
        f"  HostName {opts.hostname}",
        f"  Port {opts.port}",
        f"  User {opts.user or getpass.getuser()}",
    ]
    for key in opts.identity_files:
        lines.append(f"  IdentityFile {key}")
    if opts.identity_files:
        lines.append("  IdentitiesOnly yes")
    if not ssh.default_known_hosts(opts.known_hosts):
        lines.append(f"  UserKnownHostsFile {' '.join(opts.known_hosts)}")
    lines.append("  StrictHostKeyChecking yes")
    if opts.proxy_jump:
        lines.append(f"  ProxyJump {','.join(opts.proxy_jump)}")
    if not args.no_forwards:
        for p in forwarded_ports(stk.load(target.stack), target, opts.user or getpass.getuser()):
            lines.append(f"  LocalForward {p} 127.0.0.1:{p}")
    sys.stdout.write("\n".join(lines) + "\n")
    return ExitCode.OK
