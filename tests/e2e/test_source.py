"""Backend.AI run from the contributor's checkout, end to end: the real 23.09 branch (the bundle in
../shared/fixtures, as the contributor's remote) on an isolated bookworm sandbox host, its dev venv
from its own pins (pip on the host, through the sandbox's proxy), its LFS files, the four services
from the checkout; an edit served after a restart; the wheels and back on the same host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.e2e.checks import login_script, phases
from tests.ssh.conftest import drop_lock_dirs, isolated_env, lock_dirs, ssh

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.ssh]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("DEVKIT_FIXTURES") or ROOT.parent / "shared" / "fixtures")
BUNDLE = FIXTURES / "backend.ai-23.09.bundle"
HOST = "src"
BASE = f"/var/lib/devkit/{HOST}/backend.ai"  # root's base dir inside the sandbox
CHECKOUT = "/root/backend.ai"


class Bed(NamedTuple):
    dir: Path
    env: dict[str, str]
    wheels: Path


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the sandbox host is an isolated Debian with its own namespaces")
    if not BUNDLE.is_file():
        pytest.skip(f"the 23.09 branch is not there: {BUNDLE} (../shared/fixtures)")
    for tool in ("/usr/sbin/debootstrap", "/usr/bin/tinyproxy", "/usr/bin/unshare"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    _need()
    d = Path(tempfile.mkdtemp(prefix="dksrc-", dir="/tmp"))
    d.chmod(0o755)
    (d / "pyproject.toml").write_text("[tool.devkit]\n")  # the default stack: backend.ai
    wheels = Path(
        os.environ.get("DEVKIT_TEST_WHEELS") or Path.home() / ".cache" / "devkit-tests" / "wheels"
    )
    wheels.mkdir(parents=True, exist_ok=True)
    b = Bed(d, isolated_env(d), wheels)
    locks = lock_dirs()
    try:
        r = devkit(b, "sandbox", "up", HOST, "--release", "bookworm", timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        yield b
    finally:
        devkit(b, "sandbox", "down", HOST, timeout=300)
        drop_lock_dirs(locks)
        shutil.rmtree(d, ignore_errors=True)


def devkit(bed: Bed, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit", *args],
        cwd=bed.dir,
        env=bed.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def on_host(bed: Bed, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return ssh(bed.env, HOST, script, timeout=timeout)


def status(bed: Bed) -> dict[str, Any]:
    r = devkit(bed, "status", HOST, "--format", "json", timeout=120)
    assert r.stdout, r.stderr
    return json.loads(r.stdout)


def manager_root(bed: Bed) -> dict[str, Any]:
    r = on_host(
        bed,
        "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:8091/\", timeout=10).read().decode())'",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def phase() -> Iterator[Callable[[str], Any]]:
    out = ROOT / ".cache" / "source-timings.txt"
    with phases("backend.ai from source, e2e phase timings", out) as timed:
        yield timed


SOURCE = f"backend_ai.source={BUNDLE}@23.09"
# the manager's `GET /` handler, changed to answer with a marker after its version
_EDIT = """
path = "src/ai/backend/manager/server.py"
text = open(path).read()
assert text.count('"manager": __version__,') == 1, "the hello handler has moved"
open(path, "w").write(text.replace('"manager": __version__,', '"manager": __version__ + "+devkit-edit",'))
"""


@pytest.mark.timeout(2400)
def test_backendai_from_the_23_09_branch(bed: Bed, phase: Callable[[str], Any]) -> None:
    with phase("provision from the bundle (apt, dev venv, LFS, services)"):
        r = devkit(bed, "provision", HOST, "--set", SOURCE, "--wheelhouse", str(bed.wheels))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Backend.AI 23.09.11 from source on src: the checkout /root/backend.ai" in r.stdout
        assert "Git LFS file(s) of /root/backend.ai are still pointers" in r.stdout  # named

    with phase("status: every service healthy, from the checkout"):
        st = status(bed)
        assert st["ok"], st
        out = on_host(
            bed,
            f"tr '\\0' ' ' < /proc/$(cat {BASE}/run/supervisord.pid)/cmdline; cat {BASE}/bin/python",
        ).stdout
        assert f"cd {CHECKOUT}" in out and "PYTHONPATH=" in out
        assert manager_root(bed)["manager"].startswith("23.09")

    with phase("the checkout: the branch, origin, a clean status, the venv"):
        r = on_host(
            bed,
            f"cd {CHECKOUT} && git rev-parse --abbrev-ref HEAD && git remote get-url origin && "
            "git status --porcelain | wc -l && ls dist/export/python/virtualenvs/python-default",
        )
        branch, origin, dirty, venv = r.stdout.split()
        assert (branch, dirty, venv) == ("23.09", "0", "3.11.8"), r.stdout
        assert origin.endswith(".bundle")

    with phase("a login, a signed call, and the repo's own ./backend.ai"):
        r = on_host(bed, login_script(BASE))
        assert r.stdout.split() == ["authenticated", "session"], r.stdout + r.stderr
        env = f"{BASE}/client/env-local-admin-api.sh"
        r = on_host(bed, f"cd {CHECKOUT} && . {env} && ./backend.ai admin agent list")
        assert r.returncode == 0 and "ALIVE" in r.stdout, r.stdout + r.stderr

    with phase("a second provision changes nothing"):
        r = devkit(bed, "provision", HOST, "--set", SOURCE, "--format", "json")
        assert json.loads(r.stdout)["hosts"][0]["status"] == "unchanged", r.stdout

    with phase("an edit to a manager handler, served after a restart"):
        # the manager's `GET /` answers with its version: an edit to that handler shows at once
        r = on_host(bed, f"cd {CHECKOUT} && python3 - <<'EOF'\n{_EDIT}\nEOF")
        assert r.returncode == 0, r.stdout + r.stderr
        r = devkit(bed, "restart", HOST, "manager")
        assert r.returncode == 0, r.stdout + r.stderr
        assert manager_root(bed)["manager"].endswith("+devkit-edit")

    with phase("the wheels on the same host, then the checkout again"):
        r = devkit(bed, "provision", HOST, "--wheelhouse", str(bed.wheels))
        assert r.returncode == 0, r.stdout + r.stderr
        assert manager_root(bed)["manager"] == "23.09.10"  # the released wheel's own VERSION
        r = devkit(bed, "provision", HOST, "--set", SOURCE)
        assert r.returncode == 0, r.stdout + r.stderr
        assert manager_root(bed)["manager"].endswith("+devkit-edit")  # the edit was kept
