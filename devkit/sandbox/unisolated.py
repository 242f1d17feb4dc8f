"""Sandboxes that are an sshd of this machine's own system: not isolated.

- netns (root, `--isolation netns`): sshd in a network namespace of its own, on the bridge; it shares
  this machine's files, processes and packages. Much faster for the tests that provision onto many
  hosts using this machine's PostgreSQL, Redis and etcd.
- loopback (a plain user): sshd on 127.0.0.1 and a free port, running as that user.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devkit import proc
from devkit.sandbox import bridge, sshd
from devkit.sandbox.bridge import check
from devkit.sandbox.state import LOOPBACK, NETNS, Sandbox, alive, all_sandboxes, root, save


def loopback(name: str, d: Path, user: str) -> Sandbox:
    s = Sandbox(name, d, LOOPBACK, "127.0.0.1", sshd.free_port(), user, "", "", 0)
    sshd.host_config(d, "127.0.0.1", s.port)
    return s


def netns(name: str, d: Path) -> Sandbox:
    br, net = bridge.ensure(root())
    taken = {s.address for s in all_sandboxes() if s.name != name}
    index = bridge.free_index(net, taken)
    ns, veth = f"dk{bridge.tag(root())}-{name}", bridge.veth(root(), index)
    proc.run("ip", "netns", "del", ns)
    proc.run("ip", "link", "del", veth)
    try:
        _make_netns(ns, veth, br, f"{net[index]}/24")
    except BaseException:  # half made: taken away again
        proc.run("ip", "netns", "del", ns)
        proc.run("ip", "link", "del", veth)
        raise
    sshd.host_config(d, "0.0.0.0", 22)
    return Sandbox(name, d, NETNS, str(net[index]), 22, "root", ns, veth, 0)


def _make_netns(ns: str, veth: str, br: str, address: str) -> None:
    check(proc.run("ip", "netns", "add", ns), "ip netns add")
    check(
        proc.run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns),
        "veth",
    )
    check(proc.run("ip", "link", "set", veth, "master", br, "up"), "attaching the veth")
    check(
        proc.run("ip", "netns", "exec", ns, "ip", "addr", "add", address, "dev", "eth0"),
        "address",
    )
    check(proc.run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"), "eth0 up")
    check(proc.run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"), "lo up")


def netns_gone(s: Sandbox) -> bool:
    return bool(s.netns) and proc.run("ip", "netns", "pids", s.netns).returncode != 0


def start(s: Sandbox) -> Sandbox:
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd insists on it
    cmd = [sshd.SSHD, "-f", str(s.dir / "sshd_config"), "-D", "-e"]
    if s.netns:
        # nsenter joins the network namespace only: `ip netns exec` would also give sshd a private
        # mount namespace with a fresh /sys, hiding the cgroup mounts that dockerd needs, and would
        # hide every mount made inside the sandbox from this machine's mount table
        cmd = ["nsenter", f"--net=/run/netns/{s.netns}", *cmd]  # execs sshd: same pid
    log = s.dir / "sshd.log"
    with log.open("ab") as fh:
        p = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, start_new_session=True
        )

    def gone() -> str | None:
        if p.poll() is None:
            return None
        return log.read_text(errors="replace").strip()[-300:]

    def listening() -> int:  # sshd's own pid file is the truth (nsenter execs it: the same pid)
        try:
            pid = int((s.dir / "sshd.pid").read_text().strip())
        except (OSError, ValueError):
            return 0
        return pid if pid == p.pid else 0

    try:
        return save(s._replace(pid=sshd.wait(s.address, s.port, gone, listening)))
    except BaseException:  # an sshd that did not come up is not left running
        if p.poll() is None:
            p.kill()
        p.wait()
        raise


def processes(s: Sandbox) -> list[int]:
    """Its sshd, and for a network namespace every process inside it."""
    pids = [s.pid] if alive(s.pid) else []
    if s.netns:
        r = proc.run("ip", "netns", "pids", s.netns)
        pids += [int(p) for p in r.out.split() if p.isdigit()]
    return sorted(set(pids))


def remove(s: Sandbox) -> None:
    if s.netns:
        proc.run("ip", "netns", "del", s.netns)
        proc.run("ip", "link", "del", s.veth)
