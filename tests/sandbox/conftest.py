"""Isolated sandboxes (root): real debootstrap roots, namespaces, sshd, proxy and dockerd.

Each test bed is a temp dir with its own DEVKIT_STATE_DIR, DEVKIT_SSH_CONFIG and DEVKIT_KNOWN_HOSTS
(tests.ssh.conftest.isolated_env): ~/.ssh is never touched, and the bed's bridge, proxy and cgroups
carry its own tag. The Debian roots come from this machine's cache (built on first use; .ci/run
builds them first). Finalizers bring every sandbox of a bed down whatever happened, then check that
nothing of it is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devkit.sandbox import bridge
from tests.ssh.conftest import Bed, devkit, isolated_env

TOOLS = ("debootstrap", "tinyproxy", "unshare", "nsenter", "ip", "iptables", "nft", "ssh")
RELEASES = {"bw": "bookworm", "tx": "trixie"}


def need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: an isolated sandbox has its own namespaces")
    for tool in TOOLS:
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (bash .ci/setup installs it)")


def tag(b: Bed) -> str:
    return bridge.tag(Path(b.env["DEVKIT_STATE_DIR"]) / "sandbox")


def leftovers(b: Bed) -> list[str]:
    """Anything of this bed's sandboxes still on the machine."""
    t = tag(b)
    found = [
        f"link {ln}" for ln in _lines("ip", "-o", "link") if f"dkb{t}" in ln or f"dkv{t}" in ln
    ]
    found += [
        f"cgroup {c}"
        for h in Path("/sys/fs/cgroup").iterdir()
        if h.is_dir()
        for c in h.glob(f"devkit-{t}-*")
    ]
    found += [
        f"mount {ln}"
        for ln in Path("/proc/self/mountinfo").read_text().splitlines()
        if str(b.dir) in ln
    ]
    proxy = Path(b.env["DEVKIT_STATE_DIR"]) / "sandbox" / "proxy"
    if proxy.exists():
        found.append(f"proxy state {proxy}")
    return found


def _lines(*cmd: str) -> list[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()


def down_all(b: Bed) -> None:
    boxes = Path(b.env["DEVKIT_STATE_DIR"]) / "sandbox"
    for box in sorted(boxes.glob("*/sandbox.json")):
        r = devkit(b, "sandbox", "down", box.parent.name, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def make_bed() -> Iterator[Callable[[str], Bed]]:
    """Fresh beds (their own state dir, ssh config, bridge and proxy), cleaned up after the test."""
    made: list[Bed] = []

    def make(prefix: str = "dksb-") -> Bed:
        d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        d.chmod(0o755)
        (d / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "halfstack"\n')
        b = Bed(d, isolated_env(d), "")
        made.append(b)
        return b

    need()
    yield make
    for b in made:
        try:
            down_all(b)
            assert leftovers(b) == []
        finally:
            shutil.rmtree(b.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def bed() -> Iterator[Bed]:
    """A bed with a bookworm (`bw`) and a trixie (`tx`) sandbox, shared by the tests that only look."""
    need()
    d = Path(tempfile.mkdtemp(prefix="dksb-", dir="/tmp"))
    d.chmod(0o755)
    (d / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "halfstack"\n')
    b = Bed(d, isolated_env(d), "")
    try:
        for name, release in RELEASES.items():
            r = devkit(b, "sandbox", "up", name, "--release", release, timeout=900)
            assert r.returncode == 0, r.stdout + r.stderr
        yield b
    finally:
        try:
            down_all(b)
            assert leftovers(b) == []
        finally:
            shutil.rmtree(d, ignore_errors=True)
