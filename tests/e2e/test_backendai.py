"""The real Backend.AI 23.9.10 stack provisioned onto a sandbox host, end to end, with phase timings.

One sandbox host (`--isolation netns`: a network namespace with its own sshd, so root only; the test
reads the stack's files and mounts from this machine); the stack's wheels come from
PyPI once and are kept in a test cache dir (`--wheelhouse`, default ~/.cache/devkit-tests/wheels,
or $DEVKIT_TEST_WHEELS), so a repeated run installs offline. Whatever happens, the finalizer tears the
stack down, unmounts what dockerd left, stops the sandbox by pid and removes the temp dir.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.e2e.checks import devkit_in, exposed, login_script, phases
from tests.ssh.conftest import children, cut, drop_lock_dirs, isolated_env, lock_dirs, ssh

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.ssh]

ROOT = Path(__file__).resolve().parents[2]
HOST = "bai"
SERVICES = {
    "postgres",
    "redis",
    "etcd",
    "docker",
    "storage-proxy",
    "manager",
    "agent",
    "webserver",
}


class Bed(NamedTuple):
    dir: Path
    env: dict[str, str]
    base: Path  # the stack's base dir on the sandbox host (the same filesystem)
    wheels: Path


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the sandbox host is a network namespace with its own sshd")
    for tool in ("/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/sbin/ip", "/usr/bin/nsenter"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys, ensurepip; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != "(3, 11)":
        pytest.skip("Backend.AI 23.9.10 needs /usr/bin/python3 3.11 with venv (python3-venv)")


def run(
    bed: Bed, *args: str, timeout: float = 900, check: bool = False
) -> subprocess.CompletedProcess[str]:
    return devkit_in(bed.dir, bed.env, *args, timeout=timeout, check=check)


def on_host(bed: Bed, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A shell command on the sandbox host, over plain OpenSSH with the host key verified."""
    return ssh(bed.env, HOST, script, timeout=timeout)


def status(bed: Bed) -> dict[str, Any]:
    r = run(bed, "status", HOST, "--base-dir", str(bed.base), "--format", "json", timeout=120)
    return json.loads(r.stdout)


def not_ok(st: dict[str, Any]) -> str:
    """The rows of a status that fail it, for an assertion's message."""
    rows = [s for s in st.get("services", []) if s["state"] != "RUNNING" or s["healthy"] is False]
    return json.dumps({"supervisord": st.get("supervisord"), "not ok": rows}, indent=1)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def phase() -> Iterator[Callable[[str], Any]]:
    """`with phase("name"):` records the wall time of a phase; the table is printed at the end."""
    out = Path(os.environ.get("DEVKIT_E2E_TIMINGS", ROOT / ".cache" / "e2e-timings.txt"))
    with phases("backend.ai e2e phase timings", out) as timed:
        yield timed


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    _need()
    d = Path(tempfile.mkdtemp(prefix="dke2e-", dir="/tmp"))
    d.chmod(0o755)  # the `postgres` user must reach its data dir below here
    (d / "pyproject.toml").write_text("[tool.devkit]\n")  # the default stack: backend.ai
    wheels = Path(
        os.environ.get("DEVKIT_TEST_WHEELS") or Path.home() / ".cache" / "devkit-tests" / "wheels"
    )
    wheels.mkdir(parents=True, exist_ok=True)
    b = Bed(d, isolated_env(d), d / "base" / HOST, wheels)
    locks = lock_dirs()
    yield b
    # clean up even after a failure: stop the stack (dockerd gets its SIGTERM and the time to stop
    # its containers), unmount what is left, then the sandbox by pid, then the files
    if (b.base / ".devkit-stack").exists():
        run(b, "teardown", HOST, "--base-dir", str(b.base), "--purge", timeout=300)
    for mp in sorted(mounts_under(d), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], check=False)
    for box in sorted((d / "state" / "sandbox").glob("*/sandbox.json")):
        run(b, "sandbox", "down", box.parent.name, timeout=120)
    drop_lock_dirs(locks)
    shutil.rmtree(d, ignore_errors=True)


def _sandbox_netns(bed: Bed) -> tuple[str, int]:
    box = json.loads((bed.dir / "state" / "sandbox" / HOST / "sandbox.json").read_text())
    return box["netns"], box["pid"]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# psql as the stack's database user, with its generated password read on the host
_SQL = (
    "PGPASSWORD=$(cat {base}/secrets/postgres_password) /usr/lib/postgresql/15/bin/psql -X -tA "
    "-h 127.0.0.1 -p 8101 -U bai -d backend"
)


def provision_cut(
    bed: Bed, args: tuple[str, ...], sshd: int, ready: Callable[[], bool], settle: float = 0.0
) -> dict[str, Any]:
    """Start a provision, wait until `ready()`, then cut the host's SSH sessions (and what they
    run) by pid, keeping its sshd listening; the host's JSON result."""
    p = subprocess.Popen(
        [sys.executable, "-m", "devkit", "provision", HOST, *args, "--format", "json"],
        cwd=bed.dir,
        env=bed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and p.poll() is None and not ready():
        time.sleep(0.1)
    assert p.poll() is None, "provision ended before the point to cut it"
    time.sleep(settle)
    cut(children(sshd))
    out, _ = p.communicate(timeout=120)
    return json.loads(out)["hosts"][0]


def test_backendai_stack_end_to_end(bed: Bed, phase: Callable[[str], Any]) -> None:
    args = ("--base-dir", str(bed.base), "--wheelhouse", str(bed.wheels))

    with phase("sandbox up"):
        run(bed, "sandbox", "up", HOST, "--isolation", "netns", check=True)
    netns, sshd = _sandbox_netns(bed)

    with phase("busy port refused before anything starts"):
        # something else listens on the manager's port in the host's network namespace
        squatter = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-c", _LISTEN, "8091"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert squatter.stdout is not None and squatter.stdout.readline().strip() == "ready"
            r = run(bed, "provision", HOST, *args)
            assert r.returncode == 1, r.stdout + r.stderr
            assert "port 8091 (manager api)" in r.stdout and "nothing was started" in r.stdout
            assert "Traceback" not in r.stdout + r.stderr
            assert not (bed.base / "supervisor").exists()
        finally:
            squatter.kill()
            squatter.wait()

    with phase("provision, interrupted during pip install"):
        site = bed.base / "venvs" / "backend.ai" / "lib" / "python3.11" / "site-packages"
        data = provision_cut(
            bed, args, sshd, lambda: site.is_dir() and len(list(site.iterdir())) > 20
        )
        assert data["status"] == "failed" and data["error"]["op"] == "venv:backend.ai", data
        assert not (bed.base / "venvs" / "backend.ai" / ".devkit-spec").exists()

    with phase("provision, interrupted during the schema init"):
        # the venv is finished on top of the half-done one, then the run is cut in `schema oneshot`
        data = provision_cut(
            bed,
            args,
            sshd,
            lambda: any(b"oneshot" in _cmdline(c) for c in children(sshd)),
            settle=1.0,  # well inside the ~5 s the schema takes
        )
        assert data["status"] == "failed" and data["error"]["op"] == "init:manager.schema", data
        assert "venv:backend.ai" in [op["id"] for op in data["ops"] if op["status"] == "changed"]

    with phase("provision resumed to healthy"):
        r = run(bed, "provision", HOST, *args, check=True)
        assert f"{HOST}  changed" in r.stdout
        assert "http://127.0.0.1:8090/" in r.stdout  # the login URL, after the status table
        sql = _SQL.format(base=shlex.quote(str(bed.base)))
        r = on_host(bed, f"{sql} -c 'select count(*) from alembic_version'")
        assert r.stdout.strip() == "1", r.stdout + r.stderr

    with phase("status: every service healthy"):
        st = status(bed)
        assert st["ok"], not_ok(st)
        names = {s["service"] for s in st["services"]}
        # `docker` is devkit's own dockerd, absent when the host's engine answers `docker info`
        assert names in (SERVICES, SERVICES - {"docker"}), names
        assert all(s["state"] == "RUNNING" and s["healthy"] for s in st["services"]), st

    with phase("nothing but sshd listens beyond loopback"):
        r = on_host(bed, "ss -Hltnp")
        assert r.returncode == 0, r.stderr
        assert exposed(r.stdout) == [], r.stdout

    with phase("webserver login and a signed API call"):
        r = on_host(bed, login_script(bed.base))
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.split() == ["authenticated", "session"], r.stdout
        env_file = bed.base / "client" / "env-local-admin-api.sh"
        assert env_file.stat().st_mode & 0o777 == 0o600
        r = on_host(
            bed,
            f". {env_file} && backend.ai admin storage list && backend.ai admin agent list",
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "local:volume1" in r.stdout and "vfs" in r.stdout
        assert "i-devkit-agent" in r.stdout and "ALIVE" in r.stdout

    with phase("second provision changes nothing"):
        r = run(bed, "provision", HOST, *args, "--format", "json", check=True)
        assert json.loads(r.stdout)["hosts"][0]["status"] == "unchanged", r.stdout

    with phase("a crashing service is reported with its log"):
        # a valid port (70000 is refused before anything starts), the one its agent socket uses
        r = run(bed, "provision", HOST, *args, "--set", "agent.rpc_port=6007")
        assert r.returncode == 1
        assert "agent crashed on start; the last lines of its log" in r.stdout, r.stdout
        if "address already in use" not in r.stdout.lower():  # the agent's own reason
            # Backend.AI logs through a relay process, which can lose a crashing process's last
            # lines: the reason is then in an earlier attempt's lines of the same log
            full = run(bed, "logs", HOST, "agent", "-n", "400", "--base-dir", str(bed.base))
            assert "address already in use" in full.stdout.lower(), r.stdout + full.stdout
        assert "devkit logs bai agent" in r.stdout
        # supervisord goes on retrying the agent with port 6007: the next run restarts it, even
        # when it finds it STARTING, and ends only once every service is healthy
        r = run(bed, "provision", HOST, *args, "--format", "json", check=True)
        [host] = json.loads(r.stdout)["hosts"]
        agent_ops = [o["action"] for o in host["ops"] if o["id"] == "program:agent"]
        assert agent_ops in (["start"], ["restart"]), host  # start: found it BACKOFF or FATAL
        assert all(x["healthy"] is not False for x in host["services"]), host["services"]
        st = status(bed)
        assert st["ok"], not_ok(st)

    with phase("restart the manager"):
        before = {s["service"]: s["pid"] for s in status(bed)["services"]}
        run(bed, "restart", HOST, "manager", "--base-dir", str(bed.base), check=True)
        st = status(bed)
        assert st["ok"], not_ok(st)
        after = {s["service"]: s["pid"] for s in st["services"]}
        assert after["manager"] != before["manager"]
        assert {k: v for k, v in after.items() if k != "manager"} == {
            k: v for k, v in before.items() if k != "manager"
        }
        r = run(bed, "logs", HOST, "manager", "-n", "200", "--base-dir", str(bed.base))
        assert r.returncode == 0 and "INFO Loading module: auth" in r.stdout, r.stdout

    with phase("teardown --purge"):
        st = status(bed)
        sup = st["supervisord"]["pid"]
        pids = [sup, *children(sup)]
        assert len(pids) > len(names)  # dockerd's containerd, postgres' workers...
        if "docker" in names:
            assert mounts_under(bed.base), "dockerd mounted nothing: the check below is vacuous"
        run(bed, "teardown", HOST, "--base-dir", str(bed.base), "--purge", check=True)
        deadline = time.monotonic() + 10  # this machine's init reaps orphans with a delay
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)
        assert [p for p in pids if alive(p)] == []
        assert mounts_under(bed.base) == []
        assert not bed.base.exists()


# listens on 127.0.0.1:PORT until killed (stands in for another program using a stack port)
_LISTEN = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
while True:
    s.accept()[0].close()
"""
