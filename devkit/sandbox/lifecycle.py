"""Sandbox hosts: a real sshd on this machine, no VM.

Three kinds (`mode`):
- full (root, the default): an isolated Debian host of a chosen release, with its own root filesystem,
  namespaces, hostname, address on a bridge and sshd (isolated.py); packages and services provisioned
  onto it stay inside it.
- netns (root, `--isolation netns`): an sshd of this machine in its own network namespace; not
  isolated otherwise (unisolated.py). The provisioning tests use it with this machine's own packages.
- loopback (a plain user): an sshd on 127.0.0.1 running as that user; not isolated at all.

Keys, known_hosts and an ssh_config snippet live under <state dir>/sandbox/NAME/; while any sandbox
exists, devkit's managed ssh_config (sshconf.py), which the user's ssh config Includes, includes them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import NamedTuple

from devkit import debootstrap
from devkit.errors import DevkitError
from devkit.provision.ssh import sshconf
from devkit.sandbox import bridge, isolated, proxy, rootfs, sshd, unisolated
from devkit.sandbox.state import (
    FULL,
    LOOPBACK,
    NETNS,
    Sandbox,
    alive,
    all_sandboxes,
    check_name,
    init_alive,
    load,
    locked,
    root,
    zombie,
)

__all__ = [
    "FULL",
    "LOOPBACK",
    "NETNS",
    "NewSandbox",
    "Sandbox",
    "alive",
    "all_sandboxes",
    "check_name",
    "describe_new",
    "down",
    "ensure_include",
    "load",
    "remove_include",
    "root",
    "running",
    "up",
]

ISOLATIONS = (FULL, NETNS)


def _login() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _mode(existing: Sandbox | None, isolation: str | None, release: str | None) -> str:
    """The kind of sandbox to bring up, or one line saying why it cannot be."""
    if isolation is not None and isolation not in ISOLATIONS:
        raise DevkitError(
            f"sandbox: unknown isolation `{isolation}`",
            "Use --isolation full (the default as root) or --isolation netns.",
        )
    if os.geteuid() != 0:
        if isolation or release:
            option = f"--isolation {isolation}" if isolation else f"--release {release}"
            raise DevkitError(
                f"sandbox: {option} needs root: an isolated host has its own namespaces",
                "Run it as root (sudo), or leave the option out for a loopback sshd that is not isolated.",
            )
        return LOOPBACK
    mode = isolation or (existing.mode if existing else FULL)
    if existing and existing.mode != mode:
        raise DevkitError(
            f"sandbox {existing.name} exists with --isolation {existing.mode}",
            f"Remove it first: devkit sandbox down {existing.name}",
        )
    if release is not None:
        rootfs.check_release(release)
        if mode != FULL:
            raise DevkitError(
                "sandbox: --release needs --isolation full: a netns sandbox runs this machine's system"
            )
        if existing and existing.release != release:
            raise DevkitError(
                f"sandbox {existing.name} runs {existing.release}, not {release}",
                f"Remove it first: devkit sandbox down {existing.name}",
            )
    return mode


class NewSandbox(NamedTuple):
    """What `up` would create, for a dry run that creates nothing."""

    user: str
    home: str
    what: str


def describe_new(name: str) -> NewSandbox:
    if os.geteuid() == 0:
        return NewSandbox(
            "root",
            "/root",
            f"an isolated Debian {rootfs.DEFAULT_RELEASE} host `{name}` with its own root "
            "filesystem, namespaces and sshd",
        )
    return NewSandbox(_login(), str(Path.home()), "an sshd on a free loopback port, as you")


def up(name: str, release: str | None = None, isolation: str | None = None) -> Sandbox:
    """Start sandbox `name` (idempotent: a running one is returned as is, a stopped one restarted).
    As root it is isolated (`full`, Debian `release`, default trixie) unless isolation="netns"."""
    check_name(name)
    sshconf.check_user_config()  # before anything starts: it gets the Include line at the end
    if not Path(sshd.SSHD).exists() and (os.geteuid() != 0 or isolation == NETNS):
        raise DevkitError(
            f"sandbox: {sshd.SSHD} not found",
            "Install openssh-server (apt-get install openssh-server).",
        )
    if re.search(r"\s", str(root())):
        raise DevkitError(
            f"sandbox: the state dir {root()} contains whitespace, which ssh_config cannot hold",
            "Set DEVKIT_STATE_DIR to a path without spaces.",
        )
    with locked():
        existing = load(name)
        mode = _mode(existing, isolation, release)
        if mode == FULL:
            isolated.requirements()
            s = _up_full(name, existing, release or rootfs.DEFAULT_RELEASE)
        else:
            s = _up_onhost(name, existing, mode)
        ensure_include()
        return s


def _up_onhost(name: str, existing: Sandbox | None, mode: str) -> Sandbox:
    if existing and alive(existing.pid):
        return existing
    d = root() / name
    s = existing
    try:
        d.mkdir(parents=True, exist_ok=True)
        sshd.keys(d)
        if s is None:
            s = (
                unisolated.netns(name, d)
                if mode == NETNS
                else unisolated.loopback(name, d, _login())
            )
        if unisolated.netns_gone(s):
            s = unisolated.netns(name, d)
        sshd.client_files(s)
        return unisolated.start(s)
    except BaseException:
        if existing is None:  # a new sandbox that never came up leaves nothing behind
            with contextlib.suppress(Exception):  # the first error is the one to report
                _remove(name, s)
        raise


def _up_full(name: str, existing: Sandbox | None, release: str) -> Sandbox:
    if existing and init_alive(existing):
        if alive(existing.pid):
            return existing
        try:  # its init starts sshd again when it exits (else the whole sandbox starts again)
            return isolated.wait_sshd(existing, timeout=10)
        except DevkitError:
            pass  # sshd does not come back: restart the whole sandbox (its files stay)
    if existing:
        isolated.stop(existing)
        return _boot(existing)
    base = rootfs.ensure(release)  # before anything is made: it may fail (no debootstrap...)
    d = root() / name
    try:
        d.mkdir(parents=True, exist_ok=True)
        sshd.keys(d)
        return _boot(isolated.create(name, d, base))
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            _remove(name)  # a sandbox that never came up leaves nothing behind
        raise


def _boot(s: Sandbox) -> Sandbox:
    _, net = bridge.ensure(root())
    m = debootstrap.host_mirrors()
    port = proxy.ensure(
        root(), str(net[1]), net, proxy.allowed_hosts(m.hosts(), proxy.pip_indexes())
    )
    isolated.configure(s, f"http://{net[1]}:{port}")
    sshd.client_files(s)
    return isolated.boot(s, port)


def running(s: Sandbox) -> str:
    """running, sshd down (full: its init is up), or stopped."""
    if alive(s.pid):
        return "running"
    if s.mode == FULL and init_alive(s):
        return "sshd down"
    return "stopped"


def _kill(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            Path(f"/proc/{p}").exists() and not zombie(p) for p in pids
        ):
            time.sleep(0.05)


def _mounts_under(d: Path) -> list[str]:
    prefix = str(d.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if (line.split()[4] + "/").startswith(prefix)]


def down(name: str) -> list[str]:
    """Stop sandbox `name` and every process in it, and remove it: its files, address, cgroups, and
    (with the last sandbox) the bridge, the proxy and the Include line. Returns what it removed, a
    line each."""
    check_name(name)
    sshconf.check_user_config()  # the last sandbox takes its Include line back
    with locked():
        if load(name) is None and not _made_by_devkit(root() / name):
            raise DevkitError(
                f"no sandbox named {name!r}", "`devkit sandbox list` shows the sandboxes."
            )
        return _remove(name)


def _made_by_devkit(d: Path) -> bool:
    """A sandbox's folder without its record (an `up` cut short): devkit's if it holds the client
    key devkit makes first, and is a folder, not a link to one."""
    return d.is_dir() and not d.is_symlink() and (d / "client_key").is_file()


def _remove(name: str, s: Sandbox | None = None) -> list[str]:
    """Stop and remove sandbox `name` (`s`: its record, when it has none on disk yet)."""
    s = load(name) or s
    d = root() / name
    done = []
    if s is not None and s.mode == FULL:
        isolated.stop(s)
        done.append(
            f"stopped its init, every process in it and its cgroups; removed its veth {s.veth}"
        )
    elif s is not None:
        _kill(unisolated.processes(s))
        unisolated.remove(s)
        done.append(
            f"stopped its sshd (pid {s.pid})"
            + (f"; removed the network namespace {s.netns}" if s.netns else "")
        )
    mounted = _mounts_under(d)
    if mounted:  # never delete through a mount into files that are not the sandbox's
        raise DevkitError(
            f"sandbox {name}: {mounted[0]} is still mounted",
            f"umount it (umount -l {mounted[0]}), then run `devkit sandbox down {name}` again.",
        )
    if d.is_dir() and not d.is_symlink():
        shutil.rmtree(d, ignore_errors=True)
        done.append(f"removed {d}")
    left = all_sandboxes()
    if not any(b.mode == FULL for b in left) and proxy.stop(root()):
        done.append("stopped the proxy (no isolated sandbox is left)")
    if not left:
        if bridge.remove(root()):
            done.append("removed the bridge (no sandbox is left)")
        remove_include()
    return done


def ensure_include() -> None:
    """Make the user's ssh_config Include the sandboxes' snippets, so plain `ssh NAME` works too
    (through devkit's one managed file, which `devkit ssh-config --write` shares)."""
    sshconf.set_sandboxes(True)


def remove_include() -> None:
    """Stop including the sandboxes' snippets; with nothing else in devkit's managed file, the
    Include line goes from the user's ssh_config (and the file and folder, if devkit made them)."""
    sshconf.set_sandboxes(False)
