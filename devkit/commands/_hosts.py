"""The one seam of every command that works on hosts (provision, status/start/stop/restart/logs/
teardown, watch/sync/code, ssh-config): its options, its words and [tool.devkit] resolved into the
hosts to act on (validated once, nothing started), the sandbox host started where provision asks,
and a connection per host."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NamedTuple

from devkit import config
from devkit.errors import DevkitError
from devkit.provision.engine import hosts
from devkit.provision.kinds import images, registry
from devkit.provision.ssh import address
from devkit.provision.ssh import client as ssh
from devkit.provision.stack import layout
from devkit.provision.stack import spec as stk
from devkit.sandbox import lifecycle as sandbox


class Selection(NamedTuple):
    """What the user asked for: host words and overrides of the configured defaults."""

    names: tuple[str, ...] = ()
    stack: str | None = None  # --stack
    base_dir: str | None = None  # --base-dir
    config: str | None = None  # --config
    manager: str | None = None  # --manager: a cluster's manager host


def add_common(parser: argparse.ArgumentParser, many: bool = False, base_dir: bool = True) -> None:
    if many:
        parser.add_argument(
            "hosts",
            nargs="*",
            metavar="HOST",
            help="ssh_config aliases or [user@]host[:port] (default: [tool.devkit.provision] hosts, "
            "else the sandbox host, started if needed)",
        )
    else:
        parser.add_argument(
            "host",
            nargs="?",
            metavar="HOST",
            help="an ssh_config alias, [user@]host[:port] or a sandbox name (default: the first "
            "[tool.devkit.provision] host, else the sandbox host)",
        )
    parser.add_argument(
        "--stack",
        help="stack name or directory (default: [tool.devkit.provision] stack, backend.ai)",
    )
    if base_dir:
        parser.add_argument(
            "--base-dir",
            help="remote base dir for the stack's state ({host} is replaced by the "
            "host's name; default ~/.devkit/STACK)",
        )
    parser.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="record an unknown host key in known_hosts (like OpenSSH accept-new); a changed key "
        "is always refused",
    )
    parser.add_argument(
        "--connect-timeout", type=seconds, help="seconds to wait for SSH (default 10)"
    )
    parser.add_argument(
        "--config", metavar="PYPROJECT", help="the pyproject.toml with [tool.devkit]"
    )
    parser.add_argument(
        "--manager",
        metavar="HOST",
        help="a cluster: HOST runs the manager side (halfstack, manager, storage-proxy, webserver "
        "and an agent) and every other host only an agent (default: [tool.devkit.provision] manager)",
    )


def seconds(text: str) -> float:
    """argparse's type for a timeout: a positive, finite number of seconds (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (e.g. 10 or 2.5)")
    return value


def selection(args: argparse.Namespace, names: list[str]) -> Selection:
    """The Selection an argparse namespace made with add_common() describes (its base dir and
    manager checked: both become paths and ssh words)."""
    base_dir = getattr(args, "base_dir", None)
    if base_dir is not None:
        layout.check_base_dir(base_dir, "--base-dir")
    manager = getattr(args, "manager", None)
    if manager is not None:
        address.parse_address(manager)
    return Selection(
        tuple(names),
        args.stack,
        base_dir,
        getattr(args, "config", None),
        manager,
    )


class Hosts(NamedTuple):
    """What a command that works on hosts acts on, resolved once from its words and [tool.devkit]
    (every table validated in one pass). Resolving starts nothing: a sandbox host the command
    needs and that is down is only named; `start_sandbox` is the one side effect, and only
    `provision` asks for it."""

    config: config.Settings
    settings: hosts.ProvisionSettings
    targets: tuple[hosts.Target, ...]
    sandbox: str  # the sandbox host to start before anything else ("" when none must be)


def configured(sel: Selection) -> tuple[config.Settings, hosts.HostsConfig]:
    """[tool.devkit] and its provisioning tables (validated once), without resolving any host."""
    cfg = config.load(None, sel.config)
    return cfg, hosts.load(cfg.extra, cfg.source)


def resolve(sel: Selection) -> Hosts:
    """The targets for the named hosts; with none, the configured ones, else the sandbox host."""
    cfg, hc = configured(sel)
    ps = hc.settings
    names = list(sel.names) or list(ps.hosts)
    manager = sel.manager or ps.manager
    if manager:  # a cluster: the manager host is always part of the run, first
        names = [manager, *names]
    down = ""
    if not names:
        box = sandbox.load(ps.sandbox_name)
        down = "" if box is not None and sandbox.alive(box.pid) else ps.sandbox_name
        names = [ps.sandbox_name]
    boxes = {b.name for b in sandbox.all_sandboxes()} | ({down} if down else set())
    stack = sel.stack or ps.stack
    out = []
    for n in dict.fromkeys(names):
        t = hosts.target(n, hc, stack, sandbox=n in boxes)
        if sel.stack:
            t = t._replace(stack=sel.stack)
        if sel.base_dir:
            t = t._replace(base_dir=sel.base_dir)
        if manager:
            t = t._replace(role="manager" if n == manager else "agent", with_agent=ps.manager_agent)
        out.append(t)
    return Hosts(cfg, ps, tuple(out), down)


def running(h: Hosts) -> Hosts:
    """`h`, when nothing must be started first (every command but provision)."""
    if h.sandbox:
        raise DevkitError(
            f"no host given and the sandbox host `{h.sandbox}` is not running",
            "Name a host, or run `devkit provision` (it starts the sandbox).",
        )
    return h


def start_sandbox(h: Hosts) -> Hosts:
    """Start the sandbox host `h` needs (provision only): the one side effect of the seam."""
    if h.sandbox:
        sys.stderr.write(f"devkit: starting the sandbox host `{h.sandbox}`\n")
        sandbox.up(h.sandbox)
    return h._replace(sandbox="")


def connect(
    h: Hosts, target: hosts.Target, args: argparse.Namespace, unknown: str = ""
) -> ssh.SSHConnection:
    """An SSH connection to `target` as the command's options and [tool.devkit.provision] say."""
    if not unknown:
        unknown = ssh.RECORD if getattr(args, "accept_new_host_key", False) else ssh.REFUSE
    return ssh.connect(
        target.name,
        target.address,
        unknown,
        getattr(args, "connect_timeout", None) or h.settings.connect_timeout,
        getattr(args, "command_timeout", None) or h.settings.command_timeout,
    )


def stacks(h: Hosts) -> dict[str, stk.Stack]:
    """Each target's stack, loaded once (the images to pull instead of building, as configured)."""
    return {
        name: images.pulling(registry.load_stack(name), h.settings.images, h.config.source)
        for name in dict.fromkeys(t.stack for t in h.targets)
    }
