"""What went wrong when devkit was tried as an attacker and as a careless user would, on real hosts:
concurrent runs, Ctrl-C, a command that hangs, a killed supervisord (a reboot), a stale pid file,
a broken venv, a dropped database, a lost secret, the permissions of a base dir's parents, and the
stacks `status` finds on its own."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ssh.conftest import Bed, children, devkit, failed, ssh

pytestmark = [pytest.mark.ssh, pytest.mark.root]
ROOT = Path(__file__).resolve().parents[2]


def _stack(tmp: Path, name: str, init: str) -> Path:
    d = tmp / name
    d.mkdir(parents=True)
    (d / "stack.toml").write_text(
        f'[stack]\nname = "{name}"\n[services.idle.program]\ncommand = "/bin/sleep 100000"\n'
        f'[[services.idle.init]]\nid = "step"\nstage = "prestart"\nrun = {json.dumps(init)}\n'
    )
    tmp.chmod(0o755)
    return d


def _popen(bed: Bed, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devkit", *args],
        cwd=bed.dir,
        env=bed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(path: Path, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear in {seconds} s")


def test_a_second_run_waits_for_the_lock_then_names_its_holder(
    bed: Bed, hosts3: list[str], tmp_path: Path
) -> None:
    flag = tmp_path / "started"
    stack = _stack(tmp_path, "slow", f"echo go > {flag}; sleep 20")
    base = ("--stack", str(stack), "--base-dir", str(tmp_path / "b-{host}"))
    first = _popen(bed, "provision", "h2", *base)
    try:
        _wait_for(flag)
        start = time.monotonic()
        r = devkit(bed, "provision", "h2", *base, "--format", "json")
        waited = time.monotonic() - start
        assert r.returncode == 1, r.stdout + r.stderr
        error = json.loads(r.stdout)["hosts"][0]["error"]
        assert error["op"] == "lock" and "another run holds the lock" in error["message"]
        assert f"devkit (pid {first.pid})" in error["message"], error
        assert 9 < waited < 40
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, out + err  # the first run was not disturbed
    finally:
        if first.poll() is None:
            first.kill()
        devkit(bed, "teardown", "h2", *base, "--purge")


def test_ctrl_c_stops_the_remote_command_and_prints_what_was_done(
    bed: Bed, hosts3: list[str], tmp_path: Path
) -> None:
    pidfile = tmp_path / "init.pid"
    stack = _stack(tmp_path, "stuck", f"echo $$ > {pidfile}; sleep 300")
    base = ("--stack", str(stack), "--base-dir", str(tmp_path / "b-{host}"))
    p = _popen(bed, "provision", "h1", *base)
    try:
        remote = int(_wait_for(pidfile))
        assert _alive(remote)
        start = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 130, out + err
        assert time.monotonic() - start < 20
        assert "INTERRUPTED after" in out and "init:idle.step" in out, out
        assert "Traceback" not in out + err
        for _ in range(50):
            if not _alive(remote):
                break
            time.sleep(0.1)
        assert not _alive(remote), "the remote command outlived Ctrl-C"
    finally:
        if p.poll() is None:
            p.kill()
        devkit(bed, "teardown", "h1", *base, "--purge")


def test_a_command_that_hangs_is_killed_at_its_timeout(
    bed: Bed, hosts3: list[str], tmp_path: Path
) -> None:
    pidfile = tmp_path / "hang.pid"
    stack = _stack(tmp_path, "hang", f"echo $$ > {pidfile}; sleep 300")
    base = ("--stack", str(stack), "--base-dir", str(tmp_path / "b-{host}"))
    try:
        # long enough for the venv before it, far shorter than the command
        r = devkit(bed, "provision", "h1", *base, "--command-timeout", "20", "--format", "json")
        assert r.returncode == 1, r.stdout + r.stderr
        error = json.loads(r.stdout)["hosts"][0]["error"]
        assert error["op"] == "init:idle.step" and "timed out after 20 s" in error["message"]
        remote = int(pidfile.read_text())
        for _ in range(80):
            if not _alive(remote):
                break
            time.sleep(0.1)
        assert not _alive(remote), "the command outlived its timeout"
    finally:
        devkit(bed, "teardown", "h1", *base, "--purge")


HALF = ("--stack", "halfstack", "--set", "postgres.port=8201", "--set", "redis.port=8211")
HALF += ("--set", "etcd.port=8221", "--set", "etcd.peer_port=8222")


def _status(bed: Bed, host: str, *args: str) -> dict:
    r = devkit(bed, "status", host, *args, "--format", "json")
    assert r.stdout, r.stderr
    return json.loads(r.stdout)


def _psql(bed: Bed, base: Path, sql: str) -> subprocess.CompletedProcess[str]:
    """psql on h3 (in its network namespace) as the stack's role, with the current password."""
    pw = (base / "secrets" / "postgres_password").read_text().strip()
    return ssh(
        bed.env,
        "h3",
        f"PGPASSWORD={pw} /usr/lib/postgresql/15/bin/psql -X -tA -h 127.0.0.1 -p 8201 "
        f"-U devkit -d postgres -c {shlex.quote(sql)}",
    )


@pytest.fixture(scope="module")
def stack_home(bed: Bed, hosts3: list[str]):
    """The halfstack provisioned on h3 in devkit's own folder (no --base-dir): for root that is
    /var/lib/devkit, so /root is never opened to the postgres user."""
    root_mode = Path("/root").stat().st_mode
    r = devkit(bed, "provision", "h3", *HALF)
    assert r.returncode == 0, r.stdout + r.stderr
    base = Path("/var/lib/devkit/h3/halfstack")
    yield base
    r = devkit(bed, "teardown", "h3", "--purge", "--stack", "halfstack")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not base.exists() and not base.parent.exists()
    assert Path("/root").stat().st_mode == root_mode


def test_roots_stack_lives_outside_home_and_nothing_is_world_readable(
    bed: Bed, stack_home: Path
) -> None:
    assert (stack_home / ".devkit-stack").read_text() == "halfstack\n"
    loose = [
        str(p)
        for folder in ("etc", "logs", "state", "secrets", "supervisor")
        for p in (stack_home / folder).rglob("*")
        if p.is_file() and p.stat().st_mode & 0o004
    ]
    assert loose == [], loose
    # status finds the halfstack by itself, though the configured default stack is another
    other = bed.dir / "other" / "pyproject.toml"
    other.parent.mkdir(exist_ok=True)
    other.write_text('[tool.devkit.provision]\nstack = "backend.ai"\n')
    st = _status(bed, "h3", "--config", str(other))
    assert st["stack"] == "halfstack" and st["ok"], st


def test_a_killed_supervisord_and_a_stale_pid_file_are_told_and_start_brings_it_back(
    bed: Bed, stack_home: Path
) -> None:
    pidfile = stack_home / "run" / "supervisord.pid"
    pid = int(pidfile.read_text())
    kids = children(pid)
    os.kill(pid, signal.SIGKILL)  # the stand-in for a reboot: supervisord and its programs gone
    for k in kids:
        try:
            os.kill(k, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.05)
    pidfile.write_text(f"{os.getpid()}\n")  # and its pid now names another live process
    r = devkit(bed, "status", "h3", "--stack", "halfstack")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "supervisord is not running" in r.stdout and "devkit start h3" in r.stdout, r.stdout
    r = devkit(bed, "start", "h3", "--stack", "halfstack")
    assert r.returncode == 0, r.stdout + r.stderr
    st = _status(bed, "h3", "--stack", "halfstack")
    assert st["ok"] and st["supervisord"]["pid"] != os.getpid(), st


def test_a_broken_venv_a_dropped_database_and_lost_secrets_are_repaired(
    bed: Bed, stack_home: Path
) -> None:
    # the database alone, its step's marker still there: found by the step's recheck
    assert _psql(bed, stack_home, "DROP DATABASE devkit").returncode == 0
    r = devkit(bed, "provision", "h3", *HALF, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    ops = [op["id"] for op in json.loads(r.stdout)["hosts"][0]["ops"]]
    assert ops == ["init:postgres.database"], ops
    r = _psql(bed, stack_home, "SELECT 1 FROM pg_database WHERE datname = 'devkit'")
    assert r.stdout.strip() == "1", r.stdout + r.stderr
    site = next((stack_home / "venvs" / "supervisor" / "lib").glob("python3*/site-packages"))
    shutil.rmtree(site / "supervisor")  # the venv's spec file still says it is complete
    assert _psql(bed, stack_home, "DROP DATABASE devkit").returncode == 0
    (stack_home / "secrets" / "postgres_password").unlink()
    r = devkit(bed, "provision", "h3", *HALF, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    ops = {op["id"] for op in json.loads(r.stdout)["hosts"][0]["ops"]}
    assert {"venv:supervisor", "secret:postgres_password", "init:postgres.database"} <= ops, ops
    assert (site / "supervisor").is_dir()
    # the role has the new password, and the database is back
    r = _psql(bed, stack_home, "SELECT 1 FROM pg_database WHERE datname = 'devkit'")
    assert r.stdout.strip() == "1", r.stdout + r.stderr
    assert _status(bed, "h3", "--stack", "halfstack")["ok"]
    again = devkit(bed, "provision", "h3", *HALF, "--format", "json")
    assert json.loads(again.stdout)["hosts"][0]["status"] == "unchanged", again.stdout


def test_a_closed_parent_is_opened_for_postgres_alone_and_purge_closes_it(
    bed: Bed, hosts3: list[str]
) -> None:
    # not under pytest's tmp_path: other pytest runs on the machine chmod its parents back to 0700
    closed = bed.dir / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    base = ("--base-dir", str(closed / "b-{host}"), *HALF[:2], "--set", "postgres.port=8301")
    base += ("--set", "redis.port=8311", "--set", "etcd.port=8321", "--set", "etcd.peer_port=8322")
    try:
        r = devkit(bed, "provision", "h2", *base)
        assert r.returncode == 0, r.stdout + r.stderr
        assert closed.stat().st_mode & 0o007 == 0  # not opened to everyone: an ACL for postgres
        acl = subprocess.run(["getfacl", "-p", str(closed)], capture_output=True, text=True).stdout
        assert "user:postgres:--x" in acl, acl
        assert _status(bed, "h2", "--stack", "halfstack", "--base-dir", base[1])["ok"]
    finally:
        r = devkit(bed, "teardown", "h2", "--purge", "--stack", "halfstack", "--base-dir", base[1])
    assert r.returncode == 0, r.stdout + r.stderr
    acl = subprocess.run(["getfacl", "-p", str(closed)], capture_output=True, text=True).stdout
    assert "postgres" not in acl and closed.stat().st_mode & 0o777 == 0o700


def test_a_base_dir_with_supervisords_comment_forms_runs_every_program(
    bed: Bed, hosts3: list[str]
) -> None:
    """Issue 22, items 6 and 13: ` ;` and ` #` start comments in supervisord's config, which cut its
    paths short (supervisord failed once 14 ops had changed the host). Its paths are written from
    `%(here)s` now, and every program runs; a base dir it cannot hold at all (` ;` and a %) is
    refused while planning, before anything on the host changes."""
    base = str(bed.dir / "semi ;colon #hash" / "{host}")
    ports = ("--set", "postgres.port=8401", "--set", "redis.port=8411", "--set", "etcd.port=8421")
    args = ("--stack", "halfstack", "--base-dir", base, *ports, "--set", "etcd.peer_port=8422")
    try:
        r = devkit(bed, "provision", "h1", *args, "--format", "json")
        assert r.returncode == 0, failed(r.stdout) + r.stderr
        st = _status(bed, "h1", "--stack", "halfstack", "--base-dir", base)
        assert {s["service"] for s in st["services"]} == {"postgres", "redis", "etcd"}, st
        assert st["ok"] and all(s["state"] == "RUNNING" for s in st["services"]), st
        log = Path(base.replace("{host}", "h1")) / "logs" / "redis.log"
        assert log.stat().st_size > 0  # where supervisord was told to write it
    finally:
        r = devkit(bed, "teardown", "h1", *args[:4], "--purge")
    assert r.returncode == 0, r.stdout + r.stderr
    never = bed.dir / "100% ;x"
    r = devkit(bed, "provision", "h1", "--stack", "halfstack", "--base-dir", str(never))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert r.stderr.startswith("devkit: error: supervisor/supervisord.conf: the base dir has ")
    assert not never.exists()
