"""Isolated sandboxes (root): a Debian root filesystem of their own and their own namespaces.

The engine is util-linux's `unshare` (mount, PID, UTS, IPC, network and cgroup namespaces) running
boot.sh, which pivots into an overlay of the cached base root (rootfs.py) and this sandbox's own
layer, then init.py as PID 1, which runs the sandbox's own sshd with its own host key. Its network is
one veth on the state dir's bridge with a filter inside the sandbox's own network namespace (this
machine's firewall is never touched): it reaches the other sandboxes and, on this machine, only the
proxy. Everything lives under <state dir>/sandbox/NAME/ (the layer, plain data directories for /root,
/home, /srv, /tmp and /var/lib/docker, keys) and in one cgroup per hierarchy; `down` kills its init,
which ends every process in it, and removes the rest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from devkit import proc
from devkit.errors import DevkitError
from devkit.sandbox import bridge, cgroups, rootfs, sshd
from devkit.sandbox.state import (
    FULL,
    Sandbox,
    alive,
    all_sandboxes,
    init_alive,
    root,
    save,
    start_time,
    zombie,
)

HERE = Path(__file__).resolve().parent
BOOT, INIT = HERE / "boot.sh", HERE / "init.py"
# plain directories of this machine's filesystem bound into the sandbox (overlay2 fails on overlayfs):
# where data lives, the stacks' base dirs with their dockerd's data root included (root's under
# /var/lib/devkit, a user's under /home)
DATA_DIRS = {
    "root": 0o700,
    "home": 0o755,
    "srv": 0o755,
    "tmp": 0o1777,
    "var/lib/docker": 0o710,
    "var/lib/devkit": 0o755,
}
TOOLS = {
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "pivot_root": "util-linux",
    "ip": "iproute2",
    "iptables": "iptables",
    "tinyproxy": "tinyproxy",
}


def requirements() -> None:
    """One clear line for the first thing missing, before anything is changed."""
    for tool, package in TOOLS.items():
        if not shutil.which(tool):
            raise DevkitError(
                f"sandbox: `{tool}` is not installed: isolated sandboxes need it",
                f"apt-get install {package} (or run `bash .ci/setup`).",
            )
    loaded = "overlay" in Path("/proc/filesystems").read_text()
    if not loaded and proc.run("modprobe", "-n", "-q", "overlay").returncode != 0:
        # (a module that exists is loaded by the kernel on the first overlay mount)
        raise DevkitError(
            "sandbox: this kernel has no overlayfs: isolated sandboxes layer their root on it",
            "modprobe overlay, or use --isolation netns.",
        )
    if not cgroups.machine():
        raise DevkitError(
            "sandbox: no cgroup hierarchy is mounted under /sys/fs/cgroup: dockerd inside needs one",
            "Mount cgroup2 on /sys/fs/cgroup (your init system normally does).",
        )


def cgroup_name(name: str) -> str:
    return f"devkit-{bridge.tag(root())}-{name}"


def create(name: str, d: Path, base: rootfs.Root) -> Sandbox:
    """A new sandbox's layer, data directories and address (its first `up`)."""
    _, net = bridge.ensure(root())
    index = bridge.free_index(net, {s.address for s in all_sandboxes() if s.name != name})
    for sub in ("upper", "work", "mnt"):
        (d / sub).mkdir(exist_ok=True)
    for sub, mode in DATA_DIRS.items():
        target = d / "data" / sub
        if not target.exists():
            target.mkdir(parents=True)
            src = base.path / sub
            if src.is_dir() and any(src.iterdir()):
                r = proc.run("cp", "-a", "--", f"{src}/.", str(target))
                bridge.check(r, f"copying /{sub} of the base root")
        target.chmod(mode)
    hs = cgroups.machine()
    return Sandbox(
        name,
        d,
        FULL,
        str(net[index]),
        22,
        "root",
        "",
        bridge.veth(root(), index),
        0,
        release=base.release,
        base=str(base.path),
        cgroups=tuple(str(c) for c in cgroups.dirs(hs, cgroup_name(name))),
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.devkit-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def configure(s: Sandbox, proxy: str) -> None:
    """The sandbox's own files, written into its layer while it is stopped: name, host key, root's
    authorized key, and apt and pip going through the proxy (http://ADDRESS:PORT)."""
    upper = s.dir / "upper"
    _write(upper / "etc/hostname", f"{s.name}\n")
    _write(
        upper / "etc/hosts",
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{s.name}\n{s.address}\t{s.name}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    # no DNS inside: apt and pip name their hosts to the proxy, which resolves them
    _write(
        upper / "etc/resolv.conf", "# devkit sandbox: no DNS; apt and pip go through the proxy\n"
    )
    _write(upper / "etc/ssh/ssh_host_ed25519_key", (s.dir / "host_ed25519").read_text(), 0o600)
    _write(upper / "etc/ssh/ssh_host_ed25519_key.pub", (s.dir / "host_ed25519.pub").read_text())
    ssh_dir = s.dir / "data/root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    _write(ssh_dir / "authorized_keys", (s.dir / "client_key.pub").read_text(), 0o600)
    _write(
        upper / "etc/apt/apt.conf.d/01devkit-proxy",
        f'// devkit sandbox: the registries are reached through devkit\'s proxy only\nAcquire::http::Proxy "{proxy}";\nAcquire::https::Proxy "{proxy}";\n',
    )
    _write(
        upper / "etc/pip.conf",
        f"# devkit sandbox: PyPI through devkit's proxy; the system CAs (this machine's included)\n"
        f"[global]\nproxy = {proxy}\ncert = /etc/ssl/certs/ca-certificates.crt\n",
    )
    _write(
        upper / "etc/profile.d/devkit-proxy.sh",
        f"# devkit sandbox: tools that read the usual variables go through devkit's proxy\n"
        f"export http_proxy={proxy} https_proxy={proxy} no_proxy=localhost,127.0.0.1\n",
    )


def _child(pid: int, timeout: float = 10.0) -> int:
    """The one child of `pid` (unshare's: the sandbox's PID 1), once it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if kids:
                return int(kids[0])
        if zombie(pid):
            return 0
        time.sleep(0.01)
    return 0


def _network(s: Sandbox, init: int, proxy_port: int) -> None:
    br, net = bridge.ensure(root())
    host = str(net[1])
    proc.run("ip", "link", "del", s.veth)  # left by a sandbox whose init was killed
    bridge.check(
        proc.run(
            "ip", "link", "add", s.veth, "type", "veth", "peer", "name", "eth0", "netns", str(init)
        ),
        "creating the sandbox's veth",
    )
    bridge.check(proc.run("ip", "link", "set", s.veth, "master", br, "up"), "attaching the veth")
    # inside the sandbox's network namespace only: its address, no IPv6, and a filter that lets it
    # reach the other sandboxes and, of this machine, only the proxy (replies to this machine's
    # connections pass); `mangle FORWARD` covers its containers, before dockerd's own rules
    script = f"""
set -e
ip link set lo up
ip addr add {s.address}/{net.prefixlen} dev eth0
ip link set eth0 up
for f in all default eth0; do echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done
ipt() {{ iptables -w 10 "$@"; }}
ipt -A OUTPUT -o lo -j ACCEPT
ipt -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
ipt -A OUTPUT -d {host} -p tcp --dport {proxy_port} -j ACCEPT
ipt -A OUTPUT -d {host} -j REJECT
ipt -A OUTPUT -o eth0 ! -d {net} -j REJECT
ipt -t mangle -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
ipt -t mangle -A FORWARD -o eth0 -d {host} -p tcp --dport {proxy_port} -j RETURN
ipt -t mangle -A FORWARD -o eth0 -d {host} -j DROP
ipt -t mangle -A FORWARD -o eth0 ! -d {net} -j DROP
"""
    r = proc.run("nsenter", f"--net=/proc/{init}/ns/net", "/bin/sh", "-c", script)
    bridge.check(r, "setting up the sandbox's network")


def _host_pid(init: int, inner: int) -> int:
    """This machine's pid of the process numbered `inner` in the sandbox's PID namespace."""
    ns = os.readlink(f"/proc/{init}/ns/pid")
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(p / "ns/pid") != ns:
                continue
            for line in (p / "status").read_text().splitlines():
                if line.startswith("NSpid:") and int(line.split()[-1]) == inner:
                    return int(p.name)
    return 0


def sshd_pid(s: Sandbox) -> int:
    try:
        inner = int(Path(f"/proc/{s.init}/root/run/sshd.pid").read_text().strip())
    except (OSError, ValueError):
        return 0
    return _host_pid(s.init, inner)


def wait_sshd(s: Sandbox, timeout: float = sshd.LISTEN_TIMEOUT) -> Sandbox:
    """Until the sandbox's sshd (which its init starts) listens and answers."""

    def gone() -> str | None:
        if init_alive(s):
            return None
        log = s.dir / "boot.log"
        return log.read_text(errors="replace").strip()[-400:] if log.exists() else "no log"

    def listening() -> int:
        pid = sshd_pid(s)
        return pid if alive(pid) else 0

    return save(s._replace(pid=sshd.wait(s.address, s.port, gone, listening, timeout)))


def boot(s: Sandbox, proxy_port: int) -> Sandbox:
    """Start a stopped sandbox: cgroups, namespaces, root, network, then wait for its sshd."""
    base = Path(s.base)
    if not (base / rootfs.INFO).is_file():
        raise DevkitError(
            f"sandbox {s.name}: its base root {base} is gone from the cache",
            f"Recreate it: devkit sandbox down {s.name} && devkit sandbox up {s.name} --release {s.release}",
        )
    hs = cgroups.machine()
    ds = cgroups.create(hs, cgroup_name(s.name))
    log = s.dir / "boot.log"
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEVKIT_CGROUPS": cgroups.spec(hs),
        "DEVKIT_DATA_DIRS": " ".join(DATA_DIRS),
    }
    unshare = [
        "unshare",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--pid",
        "--cgroup",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "--",
    ]
    with log.open("wb") as fh:
        p = subprocess.Popen(
            [
                *cgroups.join_command(ds),
                *unshare,
                "/bin/sh",
                str(BOOT),
                str(s.dir),
                str(base),
                s.name,
                str(INIT),
            ],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    init = _child(p.pid)
    if not init:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
        p.wait()
        raise DevkitError(
            f"sandbox {s.name}: it did not start: {log.read_text(errors='replace').strip()[-400:]}"
        )
    cgroups.park(hs, cgroup_name(s.name), p.pid)
    s = save(s._replace(init=init, init_start=start_time(init), pid=0, cgroups=tuple(map(str, ds))))
    try:
        _network(s, init, proxy_port)
        return wait_sshd(s)
    except BaseException:  # Ctrl-C too: a sandbox that did not come up is stopped again
        with contextlib.suppress(DevkitError):  # the first error is the one to report
            stop(s)
        raise


def stop(s: Sandbox, timeout: float = 20.0) -> None:
    """Kill its init (the kernel then kills every process in the sandbox), wait until its cgroups are
    empty, remove them and its veth."""
    if init_alive(s):
        with contextlib.suppress(ProcessLookupError):
            os.kill(s.init, signal.SIGKILL)
    ds = [Path(c) for c in s.cgroups]
    deadline = time.monotonic() + timeout
    while cgroups.procs(ds) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = cgroups.procs(ds)
    if left:
        raise DevkitError(
            f"sandbox {s.name}: processes {left[:5]} are still in its cgroups after {timeout:.0f} s",
            f"Check them (ps -o pid,stat,cmd -p {','.join(map(str, left[:5]))}), then run "
            f"`devkit sandbox down {s.name}` again.",
        )
    busy = cgroups.remove(ds)
    if busy:
        raise DevkitError(f"sandbox {s.name}: cannot remove its cgroups {busy}")
    if proc.run("ip", "link", "show", s.veth).returncode == 0:
        proc.run("ip", "link", "del", s.veth)
