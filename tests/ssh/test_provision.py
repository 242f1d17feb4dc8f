"""Provisioning the halfstack onto real sshds in network namespaces, and the faults that matter."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import docs_examples
from tests.ssh.conftest import Bed, children, cut, devkit, failed, sandbox_pid, ssh

pytestmark = [pytest.mark.ssh, pytest.mark.root]


def status(bed: Bed, host: str) -> dict:
    r = devkit(bed, "status", host, "--base-dir", bed.base, "--format", "json")
    return json.loads(r.stdout)


def pids(bed: Bed, host: str) -> dict[str, int]:
    return {s["service"]: s["pid"] for s in status(bed, host)["services"]}


def base(bed: Bed, host: str) -> Path:
    return Path(bed.base.replace("{host}", host))


# the docs (docs/how-to/provision-hosts.md) call the test's hosts vm1 to vm3
VMS = {"h1": "vm1", "h2": "vm2", "h3": "vm3"}


def test_sandbox_login_with_the_real_ssh_client_and_verified_host_key(
    bed: Bed, hosts3: list[str]
) -> None:
    r = ssh(bed.env, "h1", "echo", "in-sandbox", timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "in-sandbox"


def test_ssh_config_block_logs_in_with_plain_openssh(bed: Bed, hosts3: list[str]) -> None:
    r = devkit(bed, "ssh-config", "h2")
    assert r.returncode == 0, r.stderr
    docs_examples.compare("ssh-config", [r.stdout], VMS)
    assert "LocalForward 8101 127.0.0.1:8101" in r.stdout and "UserKnownHostsFile" in r.stdout
    f = bed.dir / "vscode_ssh_config"
    f.write_text(r.stdout)
    login = subprocess.run(
        [
            "ssh",
            "-F",
            str(f),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ExitOnForwardFailure=no",
            "h2",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert login.returncode == 0, login.stderr


def test_three_hosts_in_parallel_all_healthy(
    bed: Bed, provisioned: subprocess.CompletedProcess[str]
) -> None:
    for h in ("h1", "h2", "h3"):
        assert f"{h}  changed" in provisioned.stdout
        st = status(bed, h)
        assert st["ok"], st
        assert {s["service"] for s in st["services"]} == {"postgres", "redis", "etcd"}
        assert all(s["state"] in ("RUNNING", "STARTING") and s["healthy"] for s in st["services"])
    # the base dir has a space and both quote characters in it; the secret is private
    secret = base(bed, "h1") / "secrets" / "postgres_password"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text().strip() not in provisioned.stdout + provisioned.stderr
    docs_examples.compare("provision-three-hosts", [provisioned.stdout], VMS)


def test_second_run_changes_nothing(
    bed: Bed, provisioned: subprocess.CompletedProcess[str]
) -> None:
    r = devkit(bed, "provision", "h1", "h2", "h3", "--base-dir", bed.base, "--format", "json")
    assert r.returncode == 0, failed(r.stdout) + r.stderr
    data = json.loads(r.stdout)
    assert [h["status"] for h in data["hosts"]] == ["unchanged"] * 3, data
    assert all(h["ops"] == [] for h in data["hosts"])


def test_port_change_touches_only_that_service(
    bed: Bed, provisioned: subprocess.CompletedProcess[str]
) -> None:
    before = pids(bed, "h1")
    move_redis = ("provision", "h1", "--base-dir", bed.base, "--set", "redis.port=8112")
    r = devkit(bed, *move_redis, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    ops = {op["id"] for op in json.loads(r.stdout)["hosts"][0]["ops"]}
    # services.json is devkit's record of the health checks (redis's now uses the new port)
    assert ops == {"file:redis.conf", "file:services.json", "program:redis"}
    after = pids(bed, "h1")
    assert after["redis"] != before["redis"]
    assert (after["postgres"], after["etcd"]) == (before["postgres"], before["etcd"])
    assert status(bed, "h1")["ok"]
    r = devkit(bed, *move_redis, "--format", "json")
    assert json.loads(r.stdout)["hosts"][0]["status"] == "unchanged"


def test_dry_run_shows_a_diff_and_changes_nothing(
    bed: Bed, provisioned: subprocess.CompletedProcess[str]
) -> None:
    conf = base(bed, "h3") / "etc" / "etcd.yml"
    before = conf.read_text()
    r = devkit(
        bed, "provision", "h3", "--base-dir", bed.base, "--set", "etcd.port=8131", "--dry-run"
    )
    assert r.returncode == 0, r.stderr
    assert '-listen-client-urls: "http://127.0.0.1:8121"' in r.stdout
    assert '+listen-client-urls: "http://127.0.0.1:8131"' in r.stdout
    assert conf.read_text() == before


def test_operate_against_the_real_supervisord(
    bed: Bed, provisioned: subprocess.CompletedProcess[str]
) -> None:
    args = ("h2", "--base-dir", bed.base)
    stop = devkit(bed, "stop", *args[:1], "redis", *args[1:])
    assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout + stop.stderr
    st = {s["service"]: s for s in status(bed, "h2")["services"]}
    assert st["redis"]["state"] == "STOPPED" and st["redis"]["healthy"] is False
    table = devkit(bed, "status", *args)
    assert table.returncode == 1
    start = devkit(bed, "start", *args[:1], "redis", *args[1:])
    assert start.returncode == 0
    old = pids(bed, "h2")
    r = devkit(bed, "restart", *args)
    assert r.returncode == 0, r.stderr
    outputs = [stop.stdout, table.stdout, start.stdout, r.stdout]
    docs_examples.compare("operate", outputs, VMS)
    new = pids(bed, "h2")
    assert all(new[s] != old[s] for s in old)
    deadline = time.monotonic() + 30
    while not status(bed, "h2")["ok"] and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status(bed, "h2")["ok"]
    r = devkit(bed, "logs", "h2", "redis", "-n", "5", "--base-dir", bed.base)
    assert r.returncode == 0 and "Ready to accept connections" in r.stdout
    r = devkit(bed, "stop", "h2", "nosuch", "--base-dir", bed.base)
    assert r.returncode == 2 and "no service 'nosuch'" in r.stderr


def test_teardown_purge_removes_everything(
    bed: Bed, provisioned: subprocess.CompletedProcess[str]
) -> None:
    pid = status(bed, "h3")["supervisord"]["pid"]
    r = devkit(bed, "teardown", "h3", "--purge", "--base-dir", bed.base)
    assert r.returncode == 0, r.stderr
    assert not base(bed, "h3").exists()
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )
    r = devkit(bed, "status", "h3", "--base-dir", bed.base)
    assert r.returncode == 2 and "no halfstack stack" in r.stderr


def _stack(
    tmp: Path, name: str, init: str = "true", template: str = "port {{ redis.port }}\n"
) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "a.conf.j2").write_text(template)
    (d / "stack.toml").write_text(f"""
[stack]
name = "{name}"
[vars]
redis.port = 1
[services.sleeper]
files = [{{ id = "a.conf", template = "a.conf.j2", dest = "etc/a.conf", format = "text" }}]
[[services.sleeper.init]]
id = "step"
stage = "prestart"
run = {json.dumps(init)}
[services.sleeper.program]
command = "sleep 1000"
""")
    return d


def test_failing_op_reports_exit_code_and_stderr_tail(
    bed: Bed, hosts3: list[str], tmp_path: Path
) -> None:
    stack = _stack(tmp_path, "failing", init="echo about-to-fail; echo boom-on-stderr >&2; exit 3")
    r = devkit(bed, "provision", "h1", "--stack", str(stack), "--base-dir", str(bed.dir / "fb"))
    assert r.returncode == 1
    assert "init:sleeper.step: exit code 3" in r.stdout
    assert "exit code: 3" in r.stdout and "boom-on-stderr" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_undefined_variable_fails_before_anything_is_written(
    bed: Bed, hosts3: list[str], tmp_path: Path
) -> None:
    stack = _stack(tmp_path, "broken", template="port {{ redis.port }}\nname {{ nope }}\n")
    target = bed.dir / "never"
    r = devkit(bed, "provision", "h1", "--stack", str(stack), "--base-dir", str(target))
    assert r.returncode == 2
    assert r.stderr.startswith(
        "devkit: error: template a.conf.j2 line 2: undefined variable: 'nope' is undefined"
    )
    assert "Traceback" not in r.stderr
    assert not target.exists()


def test_unknown_host_key_is_refused_then_accepted_and_a_changed_key_refused(
    bed: Bed, hosts3: list[str]
) -> None:
    box = json.loads((bed.dir / "state" / "sandbox" / "h1" / "sandbox.json").read_text())
    kh = bed.dir / "kh-test"
    extra = bed.dir / "ssh_config_hk"
    extra.write_text(
        f"Include {bed.env['DEVKIT_SSH_CONFIG']}\nHost hk\n  HostName {box['address']}\n  User root\n"
        f"  IdentityFile {box['dir']}/client_key\n  UserKnownHostsFile {kh}\n"
    )
    env = {"DEVKIT_SSH_CONFIG": str(extra)}
    args = ("provision", "hk", "--base-dir", bed.base, "--dry-run")
    r = devkit(bed, *args, env=env)
    assert r.returncode == 1
    assert (
        "unknown host key" in r.stdout
        and "SHA256:" in r.stdout
        and "--accept-new-host-key" in r.stdout
    )
    assert not kh.exists()
    r = devkit(bed, *args, "--accept-new-host-key", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not kh.exists()  # a dry run changes nothing, known_hosts included
    r = devkit(bed, "status", "hk", "--base-dir", bed.base, "--accept-new-host-key", env=env)
    assert kh.read_text().startswith(f"{box['address']} ssh-ed25519 "), r.stdout + r.stderr
    r = devkit(bed, *args, env=env)  # now known: no flag needed
    assert r.returncode == 0, r.stdout + r.stderr
    other = bed.dir / "otherkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kh.write_text(
        f"{box['address']} " + " ".join(Path(f"{other}.pub").read_text().split()[:2]) + "\n"
    )
    r = devkit(bed, *args, "--accept-new-host-key", env=env)
    assert r.returncode == 1
    assert "has CHANGED" in r.stdout and "refusing" in r.stdout


def test_sshd_killed_mid_run_others_finish_and_next_run_completes(
    bed: Bed, provisioned, tmp_path: Path
) -> None:
    assert devkit(bed, "sandbox", "up", "h4", "--isolation", "netns").returncode == 0
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devkit",
            "provision",
            "h4",
            "h2",
            "--base-dir",
            bed.base,
            "--format",
            "json",
        ],
        cwd=bed.dir,
        env=bed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    marker = base(bed, "h4") / "venvs" / "supervisor"
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "h4 never reached its venv step"
    sshd = sandbox_pid(bed, "h4")
    cut([sshd, *children(sshd)])  # the listener and its sessions: the host drops off the network
    out, _ = p.communicate(timeout=120)
    data = {h["host"]: h for h in json.loads(out)["hosts"]}
    assert data["h2"]["status"] == "unchanged"
    assert data["h4"]["status"] == "failed"
    assert (
        "connection lost" in data["h4"]["error"]["message"]
        or "cannot reach" in data["h4"]["error"]["message"]
    )
    # no half-written file: every managed file is either absent or complete
    for f in (base(bed, "h4") / "etc").glob(".*devkit-*"):
        pytest.fail(f"temp file left behind: {f}")
    assert devkit(bed, "sandbox", "up", "h4").returncode == 0  # restarts its sshd, same keys
    r = devkit(bed, "provision", "h4", "--base-dir", bed.base)
    assert r.returncode == 0, r.stdout + r.stderr
    st = status(bed, "h4")
    assert st["ok"], st
