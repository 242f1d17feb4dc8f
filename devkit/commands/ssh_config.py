"""devkit ssh-config HOST [--write]: the Host blocks for `ssh` and VS Code Remote-SSH.

Two aliases: HOST to log in (VS Code opens several connections to it, none binds a local port) and
HOST-tunnel with the stack's LocalForwards (`ssh -N HOST-tunnel`). --write keeps them in devkit's
managed ssh_config, Included once from ~/.ssh/config; a HOST the user's config already defines is
left to it (only HOST-tunnel is written), so their own entries are never shadowed.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from devkit import paths
from devkit.commands import _hosts as seam
from devkit.errors import ExitCode
from devkit.provision.engine import desired, facts, hosts
from devkit.provision.kinds import programs, registry
from devkit.provision.kinds.base import HostInfo
from devkit.provision.ssh import address, sshconf
from devkit.provision.ssh import client as ssh
from devkit.provision.stack import spec as stk


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
        "--no-forwards", action="store_true", help="leave out the HOST-tunnel block"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="keep the blocks in devkit's ssh_config, Included once from ~/.ssh/config",
    )
    parser.add_argument(
        "--config", metavar="PYPROJECT", help="the pyproject.toml with [tool.devkit]"
    )


def forwarded_ports(stack: stk.Stack, target: hosts.Target, user: str) -> list[int]:
    """The ports the stack forwards, rendered with the host's variables (no connection needed)."""
    f = facts.fresh(HostInfo.assumed(user))
    d = desired.build(stack, target, {}, f, new_secret=lambda n: "")
    return [p.port for p in d.of(programs.NAME).ports if p.forward]


def login_lines(opts: ssh.SSHOptions) -> list[str]:
    """How to reach and trust the host: the options `ssh -G` resolved, spelled for ssh_config."""
    lines = [
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
    return lines


def tunnel_block(alias: str, login: list[str], ports: list[int]) -> str:
    forwards = [f"  LocalForward {p} 127.0.0.1:{p}" for p in ports]
    # a second tunnel fails at once instead of running without its forwards
    return "\n".join([f"Host {alias}-tunnel", *login, "  ExitOnForwardFailure yes", *forwards])


def run(args: argparse.Namespace) -> int:
    if args.alias is not None:  # it becomes a Host line and the name of a sandbox's folder
        address.check_alias(args.alias, "--alias")
    if args.write:  # before anything: --write adds the Include line to it
        sshconf.check_user_config()
    sel = seam.Selection((args.host,) if args.host else (), args.stack, None, args.config)
    target = seam.running(seam.resolve(sel)).targets[0]
    a = address.parse_address(target.address)
    opts = ssh.resolve(a.host, a.user, a.port)
    alias = args.alias or target.name
    login = login_lines(opts)
    main = "\n".join([f"Host {alias}", *login])
    ports = (
        []
        if args.no_forwards
        else forwarded_ports(
            registry.load_stack(target.stack), target, opts.user or getpass.getuser()
        )
    )
    tunnel = tunnel_block(alias, login, ports) if ports else ""
    if not args.write:
        sys.stdout.write("\n".join(b for b in (main, tunnel) if b) + "\n")
        return ExitCode.OK
    elsewhere = sshconf.defined_elsewhere(alias)
    blocks = [b for b in ((main if not elsewhere else ""), tunnel) if b]
    if not blocks:
        sys.stdout.write(
            f"{alias}: already defined in {elsewhere}, and the stack forwards no ports: "
            "nothing to write\n"
        )
        return ExitCode.OK
    had_include = sshconf.include_line() in _user_config_lines()
    changed = sshconf.write_host(alias, "\n".join(blocks))
    where = sshconf.managed_file()
    state = "wrote" if changed else "unchanged:"
    names = [f"Host {alias}"] if not elsewhere else []
    if tunnel:
        names.append(f"Host {alias}-tunnel (forwards {', '.join(map(str, ports))})")
    sys.stdout.write(f"{state} {' and '.join(names)} in {where}\n")
    if elsewhere:
        whose = "the sandbox's" if elsewhere.startswith(str(paths.state_dir())) else "your own"
        sys.stdout.write(f"  Host {alias}: {whose} entry in {elsewhere} is used as it is\n")
    cfg = paths.ssh_config_file()
    if not had_include:
        sys.stdout.write(f"  added one line to {cfg}: {sshconf.include_line()}\n")
    sys.stdout.write(
        f"next: `ssh {alias}` or VS Code (`devkit code {alias}`); "
        + (f"`ssh -N {alias}-tunnel` forwards the ports\n" if tunnel else "\n")
    )
    return ExitCode.OK


def _user_config_lines() -> list[str]:
    return sshconf.user_config_text().splitlines()
