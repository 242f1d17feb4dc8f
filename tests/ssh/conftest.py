"""Real sshds for the provisioning tests: sandbox hosts in network namespaces (root only).

They ask for `--isolation netns` explicitly: these tests read the hosts' files from this machine and
provision this machine's own PostgreSQL, Redis and etcd, which is much faster than an isolated host
(tests/sandbox/ covers those).

Everything lives under one temp dir named per run (DEVKIT_STATE_DIR, DEVKIT_SSH_CONFIG,
DEVKIT_KNOWN_HOSTS point there), so the real ~/.ssh is never touched and parallel runs never collide;
the finalizer stops every sandbox by pid and deletes its namespace, veth and bridge.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Bed(NamedTuple):
    dir: Path
    env: dict[str, str]
    base: str  # a --base-dir with spaces and quotes, {host} per host


def devkit(
    bed: Bed, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit", *args],
        cwd=bed.dir,
        env={**bed.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def failed(provision_json: str) -> str:
    """For an assertion message: each failed host's error first (a provision's JSON holds every
    op and status row, and a long message is cut before the part that says why), then the rest."""
    try:
        hosts = json.loads(provision_json)["hosts"]
    except (ValueError, KeyError, TypeError):
        return provision_json
    errors = [f"{h['host']}: {json.dumps(h['error'], indent=2)}" for h in hosts if h.get("error")]
    return "\n".join([*errors, provision_json])


def isolated_env(d: Path) -> dict[str, str]:
    """The environment for devkit in tests: its state, ssh_config and known_hosts under d (the
    real ~/.ssh is never touched) and this checkout's devkit first on the path."""
    return {
        **os.environ,
        "DEVKIT_STATE_DIR": str(d / "state"),
        "DEVKIT_SSH_CONFIG": str(d / "ssh_config"),
        "DEVKIT_KNOWN_HOSTS": str(d / "known_hosts"),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }


def lock_dirs() -> set[Path]:
    return set(Path("/tmp").glob("devkit-locks-*"))


def drop_lock_dirs(before: set[Path]) -> None:
    """The lock files devkit made in /tmp, which network-namespace sandboxes share with this
    machine (an isolated sandbox has its own /tmp): removed with the sandboxes that made them.
    Under pytest-xdist other workers' runs may hold locks there: the controller removes them once
    every worker is done (tests/conftest.py)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for d in lock_dirs() - before:
        shutil.rmtree(d, ignore_errors=True)


def ssh(
    env: dict[str, str], host: str, *command: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Plain OpenSSH to a sandbox host through devkit's ssh_config, with the host key verified."""
    return subprocess.run(
        [
            "ssh",
            "-F",
            env["DEVKIT_SSH_CONFIG"],
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            host,
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: sandbox hosts are network namespaces with their own sshd")
    for tool in (
        "/usr/sbin/sshd",
        "/usr/bin/ssh-keygen",
        "/usr/sbin/ip",
        "/usr/bin/redis-server",
        "/usr/bin/etcd",
    ):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")
    if not Path("/usr/lib/postgresql/15/bin/postgres").exists():
        pytest.skip("PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin)")


@pytest.fixture(scope="session")
def bed() -> Iterator[Bed]:
    _need()
    # not pytest's tmp_path: other pytest sessions on the machine reset its modes to 0700 and prune
    # old numbered dirs, and the `postgres` user must be able to reach its data dir under here
    d = Path(tempfile.mkdtemp(prefix="dkssh-", dir="/tmp"))
    d.chmod(0o755)
    (d / "pyproject.toml").write_text(
        '[tool.devkit.provision]\nstack = "halfstack"\n'
    )  # keeps config lookup inside the temp dir
    b = Bed(d, isolated_env(d), str(d / "b a'se\"" / "{host}"))
    locks = lock_dirs()
    yield b
    for box in sorted((d / "state" / "sandbox").glob("*/sandbox.json")):
        devkit(b, "sandbox", "down", box.parent.name, timeout=60)
    drop_lock_dirs(locks)
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    shutil.rmtree(d, ignore_errors=True)
    assert f"{d.name}" not in leftover


@pytest.fixture(scope="session")
def hosts3(bed: Bed) -> list[str]:
    names = ["h1", "h2", "h3"]
    for n in names:
        r = devkit(bed, "sandbox", "up", n, "--isolation", "netns", timeout=60)
        assert r.returncode == 0, r.stderr
    return names


@pytest.fixture(scope="session")
def provisioned(bed: Bed, hosts3: list[str]) -> subprocess.CompletedProcess[str]:
    r = devkit(bed, "provision", *hosts3, "--base-dir", bed.base)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def sandbox_pid(bed: Bed, name: str) -> int:
    import json

    return int(
        json.loads((bed.dir / "state" / "sandbox" / name / "sandbox.json").read_text())["pid"]
    )


def children(pid: int) -> list[int]:
    """All descendants of pid (from /proc), to cut a host's SSH sessions by pid, never by name."""
    kids: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cut(pids: list[int]) -> None:
    """SIGKILL pids, the stand-in for a host gone: and, as a reboot would, clear the pid files of
    the killed commands' guards (devkit removes them itself when a command ends any other way)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for f in Path("/tmp").glob(".devkit-*.pid"):
        try:
            if int(f.read_text().strip() or 0) in pids:
                f.unlink()
        except (OSError, ValueError):
            pass
