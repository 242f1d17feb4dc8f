"""From command-line words and [tool.devkit] to the hosts to act on (every provisioning command)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NamedTuple

from devkit import config
from devkit.errors import DevkitError
from devkit.provision.engine import hosts
from devkit.provision.ssh import address
from devkit.provision.stack import layout
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


def settings(sel: Selection) -> tuple[config.Settings, hosts.ProvisionSettings]:
    s = config.load(None, sel.config)
    return s, hosts.provision_settings(s.extra, s.source)


def sandbox_to_start(sel: Selection) -> str | None:
    """The sandbox host `resolve` would have to start for this selection, if any."""
    _, ps = settings(sel)
    if sel.names or ps.hosts or sel.manager or ps.manager:  # a cluster names its hosts
        return None
    box = sandbox.load(ps.sandbox_name)
    return None if box is not None and sandbox.alive(box.pid) else ps.sandbox_name


def resolve(
    sel: Selection, start_sandbox: bool = True
) -> tuple[hosts.ProvisionSettings, list[hosts.Target]]:
    """Targets for the named hosts; with none, the configured hosts, else the sandbox host (which
    `provision` starts when it is down, and the other commands only name)."""
    cfg, ps = settings(sel)
    names = list(sel.names) or list(ps.hosts)
    manager = sel.manager or ps.manager
    if manager:  # a cluster: the manager host is always part of the run, first
        names = [manager, *names]
    if not names:
        box = sandbox.load(ps.sandbox_name)
        if box is None or not sandbox.alive(box.pid):
            if not start_sandbox:
                raise DevkitError(
                    f"no host given and the sandbox host `{ps.sandbox_name}` is not running",
                    "Name a host, or run `devkit provision` (it starts the sandbox).",
                )
            sys.stderr.write(f"devkit: starting the sandbox host `{ps.sandbox_name}`\n")
            sandbox.up(ps.sandbox_name)
        names = [ps.sandbox_name]
    boxes = {s.name for s in sandbox.all_sandboxes()}
    stack = sel.stack or ps.stack
    out = []
    for n in dict.fromkeys(names):
        t = hosts.target(n, cfg.extra, cfg.source, stack, sandbox=n in boxes)
        if sel.stack:
            t = t._replace(stack=sel.stack)
        if sel.base_dir:
            t = t._replace(base_dir=sel.base_dir)
        if manager:
            t = t._replace(role="manager" if n == manager else "agent", with_agent=ps.manager_agent)
        out.append(t)
    return ps, out
