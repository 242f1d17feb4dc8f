"""The sandbox and the halfstack for a user without root: a loopback sshd on a free port that runs
as that user, and every service under the user's own base dir.

CI runs as root, so the test makes a plain user and runs the real CLI as that user (runuser); it
skips, with the reason, where it cannot (not root, no runuser, the interpreter unreadable to others).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ssh.conftest import drop_lock_dirs, lock_dirs

USER = "devkit-plain"
ROOT = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def plain_user() -> Iterator[tuple[pwd.struct_passwd, str]]:
    """The plain user, and a Python with devkit installed where that user can run it.

    Made for this module and removed after it: the user (when this made it) and a venv of the
    distribution's python3 with devkit installed from this checkout (not editable: the checkout
    may sit under a directory the plain user cannot enter, such as a 0700 temp dir)."""
    if os.geteuid() != 0:
        pytest.skip(
            "needs root to create a plain test user (as a plain user, this is the normal path)"
        )
    for tool in ("runuser", "useradd", "userdel"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    for tool in (
        "/usr/sbin/sshd",
        "/usr/bin/redis-server",
        "/usr/bin/etcd",
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/bin/python3",
    ):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")
    made = False
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", USER], check=True)
        pw, made = pwd.getpwnam(USER), True
    venv = Path(tempfile.mkdtemp(prefix="dkplain-venv-", dir="/tmp"))
    venv.chmod(0o755)
    try:
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        pip = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{ROOT}[provision]"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert pip.returncode == 0, pip.stdout + pip.stderr
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                USER,
                "--",
                str(venv / "bin" / "python"),
                "-c",
                "import devkit, fabric",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
        yield pw, str(venv / "bin" / "python")
    finally:
        shutil.rmtree(venv, ignore_errors=True)
        if made:
            subprocess.run(["userdel", "-r", USER], capture_output=True, check=False)


@pytest.fixture
def plain(plain_user) -> Iterator[tuple[list[str], dict[str, str], Path]]:
    pw, python = plain_user
    work = Path(tempfile.mkdtemp(prefix="dkplain-", dir="/tmp"))
    work.chmod(0o777)
    locks = lock_dirs()
    (work / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "halfstack"\n')
    env = {
        "HOME": pw.pw_dir,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DEVKIT_STATE_DIR": str(work / "state"),
        "DEVKIT_SSH_CONFIG": str(work / "ssh_config"),
        "DEVKIT_KNOWN_HOSTS": str(work / "known_hosts"),
        "NO_COLOR": "1",
    }
    run_as = [
        "runuser",
        "-u",
        USER,
        "--",
        "env",
        *(f"{k}={v}" for k, v in env.items()),
        python,
        "-m",
        "devkit",
    ]
    yield run_as, env, work
    subprocess.run(
        [*run_as, "teardown", "p1", "--stack", "halfstack", "--purge"],
        cwd=work,
        capture_output=True,
        timeout=120,
        check=False,
    )
    subprocess.run(
        [*run_as, "sandbox", "down", "p1"], cwd=work, capture_output=True, timeout=60, check=False
    )
    shutil.rmtree(work, ignore_errors=True)
    drop_lock_dirs(locks)


def test_loopback_sandbox_and_halfstack_as_a_plain_user(plain) -> None:
    run_as, env, work = plain

    def devkit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*run_as, *args], cwd=work, capture_output=True, text=True, timeout=timeout, check=False
        )

    up = devkit("sandbox", "up", "p1")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"{USER}@127.0.0.1:" in up.stdout and "loopback" in up.stdout
    assert "not isolated" in up.stdout
    # an isolated host needs root: one line that says so, and nothing is made
    for option in (["--isolation", "full"], ["--release", "trixie"]):
        r = devkit("sandbox", "up", "p2", *option)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.startswith(f"devkit: error: sandbox: {' '.join(option)} needs root")
        assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 2, r.stderr
        assert not (work / "state" / "sandbox" / "p2").exists()
    pg, redis, etcd, peer = free_ports(4)
    sets = [
        "--stack",
        "halfstack",
        "--set",
        f"postgres.port={pg}",
        "--set",
        f"redis.port={redis}",
        "--set",
        f"etcd.port={etcd}",
        "--set",
        f"etcd.peer_port={peer}",
    ]
    first = devkit("provision", "p1", *sets)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "p1  changed" in first.stdout
    status = devkit("status", "p1", "--stack", "halfstack")
    assert status.returncode == 0, status.stdout + status.stderr
    for service in ("postgres", "redis", "etcd"):
        line = next(ln for ln in status.stdout.splitlines() if ln.strip().startswith(service))
        assert "RUNNING" in line and line.rstrip().endswith("ok"), status.stdout
    # every process of the stack runs as the plain user
    data = json.loads(devkit("status", "p1", "--stack", "halfstack", "--format", "json").stdout)
    pids = [svc["pid"] for svc in _services(data)]
    assert len(pids) == 3 and all(pids)
    for pid in pids:
        assert Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam(USER).pw_uid
    again = devkit("provision", "p1", *sets)
    assert again.returncode == 0 and "p1  unchanged" in again.stdout, again.stdout + again.stderr
    down = devkit("teardown", "p1", "--stack", "halfstack", "--purge")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (Path(env["HOME"]) / ".devkit" / "p1" / "halfstack").exists()


def _services(data: object) -> list[dict]:
    """The service entries of `devkit status --format json`, wherever the host level puts them."""
    found: list[dict] = []
    if isinstance(data, dict):
        if "pid" in data and "state" in data:
            return [data]
        for value in data.values():
            found += _services(value)
    elif isinstance(data, list):
        for value in data:
            found += _services(value)
    return found


STACK_NEEDING_A_PACKAGE = """\
[stack]
name = "pkgonly"
description = "a stack that needs a package this machine does not have"
packages = ["devkit-absent-package"]

[services.idle.program]
command = "/bin/sleep 100000"
"""


def test_packages_need_sudo_for_a_plain_user(plain) -> None:
    """Privileged ops (packages) go through `sudo -n`: without sudo rights it is one clear line
    before anything is installed; with them, apt-get really runs (and says the package is unknown)."""
    run_as, _env, work = plain
    stack_dir = work / "pkgonly"
    stack_dir.mkdir()
    (stack_dir / "stack.toml").write_text(STACK_NEEDING_A_PACKAGE)
    stack_dir.chmod(0o755)

    def devkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*run_as, *args], cwd=work, capture_output=True, text=True, timeout=300, check=False
        )

    assert devkit("sandbox", "up", "p1").returncode == 0
    base = ["--stack", str(stack_dir), "--base-dir", str(work / "base-{host}")]
    r = devkit("provision", "p1", *base)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "sudo failed: installing devkit-absent-package needs root" in r.stdout
    assert "Allow passwordless sudo for this user, or log in as root." in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    if not shutil.which("sudo"):
        pytest.skip("sudo is not installed: the sudo path cannot be shown")
    rule = Path("/etc/sudoers.d/devkit-plain-test")
    rule.write_text(f"{USER} ALL=(ALL) NOPASSWD: ALL\n")
    rule.chmod(0o440)
    try:
        r = devkit("provision", "p1", *base)
    finally:
        rule.unlink()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Unable to locate package devkit-absent-package" in r.stdout + r.stderr, (
        r.stdout + r.stderr
    )
