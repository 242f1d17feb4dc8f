"""Isolated sandboxes of each release: their own Debian, files, processes, network and sshd."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.sandbox import rootfs
from tests import docs_examples
from tests.sandbox.conftest import RELEASES
from tests.ssh.conftest import Bed, devkit, ssh

pytestmark = [pytest.mark.root, pytest.mark.ssh]


def box(b: Bed, name: str) -> dict:
    return json.loads(
        (Path(b.env["DEVKIT_STATE_DIR"]) / "sandbox" / name / "sandbox.json").read_text()
    )


def inside(
    b: Bed, name: str, script: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    r = ssh(b.env, name, script, timeout=timeout)
    assert r.returncode == 0, f"on {name}: {script}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_each_release_is_a_debian_host_of_its_own(bed: Bed, name: str) -> None:
    release, info = RELEASES[name], box(bed, name)
    base = Path(info["base"])
    r = inside(
        bed,
        name,
        "cat /etc/debian_version; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -e --no-headers | wc -l",
    )
    version, hostname, pid1, nprocs = r.stdout.splitlines()
    assert version == (base / "etc/debian_version").read_text().strip()
    assert version != Path("/etc/debian_version").read_text().strip()
    assert version.split(".")[0] == {"bookworm": "12", "trixie": "13"}[release]
    assert hostname == name != socket.gethostname()
    assert "/run/devkit/init.py" in pid1  # its own PID namespace: PID 1 is devkit's init
    assert int(nprocs) < 15  # init, sshd and this session, not this machine's processes

    # files written inside stay inside: not on this machine, not in the shared cached root
    probe = f"devkit-probe-{uuid.uuid4().hex[:8]}"
    inside(
        bed,
        name,
        f"echo in > /root/{probe} && echo in > /etc/{probe} && echo in > /usr/local/{probe}",
    )
    for where in ("/root", "/etc", "/usr/local"):
        assert not Path(where, probe).exists()
        assert not (base / where.lstrip("/") / probe).exists()
    assert inside(bed, name, f"cat /etc/{probe}").stdout.strip() == "in"


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_each_release_is_ready_for_provisioning(bed: Bed, name: str) -> None:
    """python3 with venv, and apt and pip reaching their registries through the proxy (pip over
    TLS, trusting this machine's CAs)."""
    r = inside(
        bed,
        name,
        "set -e; python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; "
        "python3 -m venv /tmp/v; /tmp/v/bin/pip download -q --no-deps -d /tmp/dl six; ls /tmp/dl; "
        "apt-get update -q >/dev/null && apt-cache policy redis-server | grep -c Candidate",
    )
    py, wheel, candidates = r.stdout.split()
    assert py == {"bookworm": "3.11", "trixie": "3.13"}[RELEASES[name]]
    assert wheel.startswith("six-") and candidates == "1"


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_each_release_has_fuse_where_this_machine_has_it(bed: Bed, name: str) -> None:
    """A cluster's agent hosts mount the manager host's vfolder root with sshfs: FUSE's device,
    which the sandbox's own /dev gets from this machine's (tests/sandbox/test_cluster.py)."""
    if not Path("/dev/fuse").is_char_device():
        pytest.skip("this machine has no /dev/fuse")
    r = inside(
        bed,
        name,
        "stat -c '%a %t:%T' /dev/fuse && python3 -c 'import os; os.close(os.open(\"/dev/fuse\", os.O_RDWR))'",
    )
    assert r.stdout.strip() == "666 a:e5", r.stdout  # 10:229, as Debian's udev makes it


def test_list_shows_release_address_and_state(bed: Bed) -> None:
    r = devkit(bed, "sandbox", "list")
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()[1:]}
    for name, release in RELEASES.items():
        assert rows[name] == [name, "full", release, f"root@{box(bed, name)['address']}", "running"]
    docs_examples.compare("sandbox-list", [r.stdout])  # docs/how-to/sandbox-hosts.md
    # the user's ssh config Includes devkit's one file, which includes the sandboxes' snippets
    state = bed.env["DEVKIT_STATE_DIR"]
    assert (
        f"Include {state}/ssh_config" in Path(bed.env["DEVKIT_SSH_CONFIG"]).read_text().splitlines()
    )
    assert (
        f"Include {state}/sandbox/*/ssh_config"
        in Path(state, "ssh_config").read_text().splitlines()
    )


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP service of this machine on every address (0.0.0.0): a sandbox must not reach it."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()


# run inside a sandbox: what it reaches; one line `name result` per probe
_PROBE = r"""
import json, socket, subprocess, sys, urllib.request
args = json.loads(sys.argv[1])

def tcp(addr, port):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((addr, port))
        banner = s.recv(4) if port == 22 else b""
        return "open" + (":" + banner.decode() if banner else "")
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()

def get(url):
    proxy = urllib.request.ProxyHandler({"http": args["proxy"], "https": args["proxy"]})
    try:
        return str(urllib.request.build_opener(proxy).open(url, timeout=20).status)
    except urllib.error.HTTPError as e:
        return str(e.code)
    except OSError as e:
        return type(e).__name__

print("peer", tcp(args["peer"], 22))
print("host", tcp(args["host"], args["port"]))
print("other", tcp(args["other"], args["port"]))
print("proxy", tcp(args["host"], args["proxy_port"]))
subprocess.run(["ip", "route", "add", "default", "via", args["host"]], check=True)
print("other-routed", tcp(args["other"], args["port"]))
subprocess.run(["ip", "route", "del", "default"], check=True)
print("filtered", get("http://example.com/"))
print("pypi", get("https://pypi.org/simple/six/"))
"""


def _other_address() -> str:
    """An address of this machine that is not on a devkit bridge (its uplink's)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        dev, addr = line.split()[1], line.split()[3].split("/")[0]
        if not dev.startswith("dkb"):
            return addr
    return "192.0.2.1"  # none: a TEST-NET address nobody routes stands in


def test_sandboxes_reach_each_other_and_of_this_machine_only_the_proxy(
    bed: Bed, listener: int
) -> None:
    state = Path(bed.env["DEVKIT_STATE_DIR"]) / "sandbox"
    subnet = json.loads((state / "bridge.json").read_text())["subnet"]
    host = subnet.rsplit(".", 1)[0] + ".1"
    proxy_port = json.loads((state / "proxy" / "proxy.json").read_text())["port"]
    other = _other_address()
    # the service really answers on this machine's addresses, so a refusal below means something
    for addr in (host, other):
        with socket.create_connection((addr, listener), timeout=3):
            pass
    for name, peer in (("bw", "tx"), ("tx", "bw")):
        args = {
            "peer": box(bed, peer)["address"],
            "host": host,
            "other": other,
            "port": listener,
            "proxy_port": proxy_port,
            "proxy": f"http://{host}:{proxy_port}",
        }
        script = f"python3 - {json.dumps(json.dumps(args))} <<'EOF'\n{_PROBE}\nEOF"
        r = inside(bed, name, script)
        seen = dict(ln.split(" ", 1) for ln in r.stdout.splitlines())
        assert seen["peer"] == "open:SSH-", seen  # the other sandbox, by address
        assert seen["proxy"] == "open", seen
        assert seen["host"] == "ConnectionRefusedError", seen  # this machine: filtered
        assert seen["other"] != "open" and seen["other-routed"] != "open", seen
        assert seen["filtered"] == "403", seen  # the proxy serves only the allow-listed hosts
        assert seen["pypi"] == "200", seen


def test_cache_lists_the_roots_and_clears_only_unused_ones(bed: Bed, tmp_path: Path) -> None:
    r = devkit(bed, "sandbox", "cache")
    assert r.returncode == 0, r.stderr
    for name in RELEASES:
        assert box(bed, name)["base"] in r.stdout
    fake = tmp_path / "cache" / "sid-amd64-0000000000"
    fake.mkdir(parents=True)
    (fake / "devkit-rootfs.json").write_text('{"release": "sid", "arch": "amd64"}')
    r = devkit(
        bed, "sandbox", "cache", "--clear", env={"DEVKIT_ROOTFS_CACHE": str(tmp_path / "cache")}
    )
    assert r.returncode == 0, r.stderr
    assert f"removed {fake}" in r.stdout and not fake.exists()
    # what keeps --clear off the real cache's roots while a sandbox (of any state dir) overlays them
    for name in RELEASES:
        assert rootfs.in_use(Path(box(bed, name)["base"]))
    assert not rootfs.in_use(fake)
