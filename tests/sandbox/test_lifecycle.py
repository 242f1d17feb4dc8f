"""An isolated sandbox's life: it comes back after its init or sshd is killed, it fails early with one
line when something is missing, and up + apt + dockerd + the halfstack + down leave this machine
exactly as it was."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sandbox import snapshot
from tests.sandbox.conftest import leftovers, tag
from tests.sandbox.test_isolated import box, inside
from tests.ssh.conftest import Bed, devkit, ssh

pytestmark = [pytest.mark.root, pytest.mark.ssh]


def up(b: Bed, name: str, *args: str) -> dict:
    r = devkit(b, "sandbox", "up", name, *args, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return box(b, name)


def state_of(b: Bed, name: str) -> str:
    r = devkit(b, "sandbox", "list")
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith(name + " "))
    return row.split(None, 4)[4]


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_killed_sshd_or_init_comes_back_with_up(make_bed: Callable[..., Bed]) -> None:
    b = make_bed()
    first = up(b, "kx")
    inside(b, "kx", "echo kept > /root/mark")

    os.kill(first["pid"], signal.SIGKILL)  # its sshd: the sandbox's init starts it again
    assert gone(first["pid"])
    again = up(b, "kx")
    assert again["pid"] != first["pid"] and again["init"] == first["init"]
    assert inside(b, "kx", "cat /root/mark").stdout.strip() == "kept"

    os.kill(again["init"], signal.SIGKILL)  # its init: every process of the sandbox goes with it
    assert gone(again["init"]) and gone(again["pid"])
    assert state_of(b, "kx") == "stopped"
    assert ssh(b.env, "kx", "true", timeout=30).returncode != 0
    third = up(b, "kx")
    assert third["init"] != again["init"] and third["address"] == first["address"]
    assert inside(b, "kx", "cat /root/mark").stdout.strip() == "kept"  # its files stayed
    assert state_of(b, "kx") == "running"


def test_up_says_what_to_do_when_it_cannot_come_back(make_bed: Callable[..., Bed]) -> None:
    b = make_bed()
    info = up(b, "kb", "--release", "bookworm")
    os.kill(info["init"], signal.SIGKILL)
    assert gone(info["init"])
    # as if the cached root had been deleted since: it cannot boot, and says how to recreate it
    f = Path(b.env["DEVKIT_STATE_DIR"]) / "sandbox" / "kb" / "sandbox.json"
    f.write_text(json.dumps({**info, "base": "/nonexistent/bookworm-root"}))
    r = devkit(b, "sandbox", "up", "kb")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == [
        "devkit: error: sandbox kb: its base root /nonexistent/bookworm-root is gone from the cache",
        "    hint: Recreate it: devkit sandbox down kb && devkit sandbox up kb --release bookworm",
    ]


def _bin_without(tmp: Path, missing: str) -> str:
    """A PATH with every program of this machine but `missing`."""
    d = tmp / f"bin-without-{missing}"
    d.mkdir()
    for src in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for p in Path(src).iterdir() if Path(src).is_dir() else []:
            if p.name != missing and not (d / p.name).exists():
                (d / p.name).symlink_to(p)
    return str(d)


@pytest.mark.parametrize(
    ("args", "env", "first_line"),
    [
        (
            ["--release", "sid"],
            {},
            "devkit: error: sandbox: unknown release `sid`: devkit's sandboxes know bookworm (Debian 12), trixie (Debian 13)",
        ),
        (["--isolation", "vm"], {}, "devkit: error: sandbox: unknown isolation `vm`"),
        (
            ["--isolation", "netns", "--release", "trixie"],
            {},
            "devkit: error: sandbox: --release needs --isolation full: a netns sandbox runs this machine's system",
        ),
        (
            [],
            {"PATH": "without:unshare"},
            "devkit: error: sandbox: `unshare` is not installed: isolated sandboxes need it",
        ),
        (
            [],
            {"PATH": "without:tinyproxy"},
            "devkit: error: sandbox: `tinyproxy` is not installed: isolated sandboxes need it",
        ),
        (
            [],
            {"PATH": "without:debootstrap", "DEVKIT_ROOTFS_CACHE": "empty"},
            "devkit: error: sandbox: debootstrap is not installed: it builds the sandbox's Debian trixie root",
        ),
    ],
)
def test_a_missing_requirement_is_one_line_and_nothing_is_made(
    make_bed: Callable[..., Bed], tmp_path: Path, args: list[str], env: dict, first_line: str
) -> None:
    b = make_bed()
    if env.get("PATH", "").startswith("without:"):
        env = {**env, "PATH": _bin_without(tmp_path, env["PATH"].split(":", 1)[1])}
    if env.get("DEVKIT_ROOTFS_CACHE") == "empty":
        env["DEVKIT_ROOTFS_CACHE"] = str(tmp_path / "empty-cache")  # no root cached: it must build
    r = devkit(b, "sandbox", "up", "rq", *args, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == first_line and "Traceback" not in r.stderr, r.stderr
    assert len(lines) <= 2 and all(ln.startswith("    hint: ") for ln in lines[1:]), r.stderr
    assert not (Path(b.env["DEVKIT_STATE_DIR"]) / "sandbox" / "rq").exists()
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").iterdir())
    assert leftovers(b) == []


# a user's own ssh config, which devkit's Include goes in front of and must leave as it was
USER_SSH_CONFIG = "Host example\n  HostName example.invalid\n  User someone\n"


def test_up_apt_docker_halfstack_down_leave_this_machine_as_it_was(
    make_bed: Callable[..., Bed],
) -> None:
    b = make_bed()
    cfg = b.dir / "dot-ssh" / "config"  # stands in for ~/.ssh/config
    cfg.parent.mkdir(mode=0o700)
    b.env["DEVKIT_SSH_CONFIG"] = str(cfg)
    cfg.write_text(USER_SSH_CONFIG)
    cfg.chmod(0o644)
    state = Path(b.env["DEVKIT_STATE_DIR"])
    before = snapshot.machine(tag(b), b.dir, cfg)
    assert snapshot.ours(state, b.dir, set(), f"devkit-{tag(b)}-") == []

    info = up(b, "hs", "--release", "bookworm")
    assert cfg.read_text().endswith(USER_SSH_CONFIG) and cfg.read_text() != USER_SSH_CONFIG
    namespaces = {os.readlink(f"/proc/{info['init']}/ns/{n}") for n in ("pid", "net")}

    # apt inside through the proxy, then dockerd: overlay2 storage, cgroups, its bridge and
    # forwarding only in the sandbox's network namespace, a container from a locally imported image
    inside(
        b,
        "hs",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io busybox-static >/dev/null 2>&1 "
        "|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io busybox-static >/dev/null; }",
        timeout=900,
    )
    r = inside(
        b,
        "hs",
        "set -e; setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null & "
        "for i in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.1; done; "
        "docker info --format '{{.Driver}} {{.CgroupDriver}}'; "
        "mkdir -p /tmp/img/bin && cp /bin/busybox /tmp/img/bin/ && tar -C /tmp/img -c . | docker import - local/bb:1 >/dev/null; "
        "docker run --rm local/bb:1 /bin/busybox echo hello-from-a-container; "
        "docker run -d --name web -p 8080:80 local/bb:1 /bin/busybox httpd -f -p 80 >/dev/null; "
        "ip -br link show docker0 | cut -d' ' -f1; cat /proc/sys/net/ipv4/ip_forward",
    )
    assert r.stdout.split() == ["overlay2", "cgroupfs", "hello-from-a-container", "docker0", "1"], (
        r.stdout
    )
    # meanwhile this machine: no rule, sysctl, package or permission changed; new links are the
    # bed's bridge and the sandbox's veth only (docker0 and the containers' veths are inside)
    mid = snapshot.machine(tag(b), b.dir, cfg)
    for aspect in ("packages", "iptables", "nft", "sysctls", "root", "run_sshd", "netns"):
        assert mid[aspect] == before[aspect], aspect
    # (and the snapshot sees the bed's own objects: the check after `down` is not vacuous)
    assert {"links", "addresses", "routes", "cgroups"} <= set(snapshot.diff(before, mid))
    new_links = set(mid["links"]) - set(before["links"])
    assert all(("dkb" + tag(b)) in ln or ("dkv" + tag(b)) in ln for ln in new_links), new_links

    # the halfstack, provisioned with devkit: its packages go into the sandbox
    r = devkit(b, "provision", "hs", "--stack", "halfstack", timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    st = json.loads(devkit(b, "status", "hs", "--stack", "halfstack", "--format", "json").stdout)
    assert st["ok"], st
    r = inside(b, "hs", "dpkg-query -W -f '${Package}\\n' postgresql-15 redis-server etcd-server")
    assert sorted(r.stdout.split()) == ["etcd-server", "postgresql-15", "redis-server"]
    running = snapshot.ours(state, b.dir, namespaces, f"devkit-{tag(b)}-")
    assert len(running) > 10, running  # the check after `down` looks at something real

    r = devkit(b, "sandbox", "down", "hs", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 15  # this machine's init reaps orphans with a delay
    while (
        snapshot.ours(state, b.dir, namespaces, f"devkit-{tag(b)}-") and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert snapshot.ours(state, b.dir, namespaces, f"devkit-{tag(b)}-") == []
    assert snapshot.diff(before, snapshot.machine(tag(b), b.dir, cfg)) == {}
    assert cfg.read_text() == USER_SSH_CONFIG and cfg.stat().st_mode & 0o777 == 0o644
    assert leftovers(b) == []
    # the sandboxes' state dir too (devkit made it); what stays is the wheels devkit downloaded
    # for the halfstack's venv on this machine, its cache for the next provision
    assert sorted(p.name for p in state.iterdir()) == ["wheels"]
