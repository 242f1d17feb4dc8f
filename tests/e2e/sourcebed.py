"""What the source-mode end-to-end tests share (tests/e2e/test_source*.py): an isolated sandbox host
of a Debian release with devkit's state in a temp dir, devkit and plain ssh against it, and the
looks at the provisioned Backend.AI checkout they make (status, the manager's answer, an edit
saved on the host, which services restarted)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.e2e.checks import devkit_in
from tests.ssh.conftest import drop_lock_dirs, isolated_env, lock_dirs, ssh

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("DEVKIT_FIXTURES") or ROOT.parent / "shared" / "fixtures")
CHECKOUT = "/root/backend.ai"  # root's checkout inside the sandbox, where a person opens it
FOUR = ["agent", "manager", "storage-proxy", "webserver"]


class Bed(NamedTuple):
    dir: Path
    env: dict[str, str]
    wheels: Path
    host: str

    @property
    def base(self) -> str:
        return f"/var/lib/devkit/{self.host}/backend.ai"  # root's base dir inside the sandbox


def need(bundle: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the sandbox host is an isolated Debian with its own namespaces")
    if not bundle.is_file():
        pytest.skip(f"the Backend.AI branch is not there: {bundle} (../shared/fixtures)")
    for tool in ("/usr/sbin/debootstrap", "/usr/bin/tinyproxy", "/usr/bin/unshare"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")


@contextlib.contextmanager
def sandbox_bed(host: str, release: str, bundle: Path) -> Iterator[Bed]:
    """An isolated sandbox host of that release, up for the block, with devkit's state (and
    ssh_config, known_hosts) in a temp dir of its own; removed afterwards."""
    need(bundle)
    d = Path(tempfile.mkdtemp(prefix=f"dk{host}-", dir="/tmp"))
    d.chmod(0o755)
    (d / "pyproject.toml").write_text("[tool.devkit]\n")  # the default stack: backend.ai
    wheels = Path(
        os.environ.get("DEVKIT_TEST_WHEELS") or Path.home() / ".cache" / "devkit-tests" / "wheels"
    )
    wheels.mkdir(parents=True, exist_ok=True)
    # the LFS files' wheels, fetched from PyPI once per machine rather than once per run
    cache = Path.home() / ".cache" / "devkit-tests" / "wheel-cache"
    b = Bed(d, {**isolated_env(d), "DEVKIT_WHEEL_CACHE": str(cache)}, wheels, host)
    locks = lock_dirs()
    try:
        r = devkit(b, "sandbox", "up", host, "--release", release, timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        yield b
    finally:
        devkit(b, "sandbox", "down", host, timeout=300)
        drop_lock_dirs(locks)
        shutil.rmtree(d, ignore_errors=True)


def devkit(
    bed: Bed, *args: str, timeout: float = 1800, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return devkit_in(cwd or bed.dir, bed.env, *args, timeout=timeout)


def on_host(bed: Bed, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return ssh(bed.env, bed.host, script, timeout=timeout)


def status(bed: Bed) -> dict[str, Any]:
    r = devkit(bed, "status", bed.host, "--format", "json", timeout=120)
    assert r.stdout, r.stderr
    return json.loads(r.stdout)


# the manager's `GET /` from the host (python3 is there; curl need not be)
_GET_ROOT = "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:8091/\", timeout=5).read().decode())'"


def manager_root(bed: Bed) -> dict[str, Any]:
    r = on_host(bed, _GET_ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def edit(bed: Bed, rel: str, old: str, new: str) -> None:
    """Save a file of the host's checkout, as an editor there would."""
    script = (
        f"import sys; p = {CHECKOUT + '/' + rel!r}; t = open(p).read(); "
        f"assert t.count({old!r}) == 1, 'moved'; open(p, 'w').write(t.replace({old!r}, {new!r}))"
    )
    r = on_host(bed, f"python3 -c {shlex.quote(script)}")
    assert r.returncode == 0, r.stdout + r.stderr


def pids(bed: Bed) -> dict[str, int]:
    return {s["service"]: s["pid"] for s in status(bed)["services"]}


def restarted(out: str) -> list[str]:
    return sorted(ln.split(": ")[1] for ln in out.splitlines() if ": restarted (" in ln)


def serves(bed: Bed, suffix: str, timeout: float = 90) -> None:
    deadline, got = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        r = on_host(bed, f"{_GET_ROOT} 2>/dev/null")
        got = r.stdout
        if r.returncode == 0 and got and json.loads(got)["manager"].endswith(suffix):
            return
        time.sleep(0.5)
    raise AssertionError(f"the manager never answered with {suffix!r}; last answer {got!r}")


def manager_edit_restarts_the_manager_alone(bed: Bed, handler: str, hello: str, new: str) -> None:
    """Save an edit of the manager's `GET /` handler on the host (`hello` becomes `new`), then
    `devkit restart --changed`: the manager alone restarts, the others keep their processes."""
    before = pids(bed)
    edit(bed, handler, hello, new)
    r = devkit(bed, "restart", "--changed", bed.host)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"{bed.host}: manager: restarted ({handler} changed)"), r.stdout
    assert restarted(r.stdout) == ["manager"], r.stdout
    after = pids(bed)
    assert after["manager"] != before["manager"]
    assert all(after[s] == before[s] for s in ("agent", "storage-proxy", "webserver"))
