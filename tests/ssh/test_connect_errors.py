"""Connection faults are one line that names the host: nothing listening, a refused login, a command
that outlives its timeout. No traceback, and the other hosts of the run are not affected."""

from __future__ import annotations

import json

import pytest

from tests.ssh.conftest import Bed, devkit

pytestmark = [pytest.mark.ssh, pytest.mark.root]


def address(bed: Bed, name: str) -> str:
    return json.loads((bed.dir / "state" / "sandbox" / name / "sandbox.json").read_text())[
        "address"
    ]


def one_line_error(out: str) -> str:
    data = json.loads(out)
    (host,) = [h for h in data["hosts"] if h["status"] == "failed"]
    return host["error"]["message"]


def test_nothing_listening_is_one_line_naming_the_host(bed: Bed, hosts3: list[str]) -> None:
    r = devkit(bed, "provision", "root@127.0.0.1:9", "--connect-timeout", "3", "--format", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    message = one_line_error(r.stdout)
    assert "root@127.0.0.1:9" in message and "\n" not in message, message


def test_refused_login_is_one_line_and_other_hosts_still_run(
    bed: Bed, hosts3: list[str], tmp_path
) -> None:
    ip = address(bed, "h1").split("@")[-1]
    bad = f"nobody@{ip}"  # the host key is accepted (same address); the login is not allowed
    # a dry run into a base of its own: the other host is planned, and nothing is provisioned
    # that the suite's later tests expect to find fresh
    r = devkit(
        bed,
        "provision",
        bad,
        "h3",
        "--base-dir",
        str(tmp_path / "b-{host}"),
        "--accept-new-host-key",
        "--dry-run",
        "--format",
        "json",
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    data = {h["host"]: h for h in json.loads(r.stdout)["hosts"]}
    assert data[bad]["status"] == "failed"
    message = data[bad]["error"]["message"]
    assert ip in message and "\n" not in message, message
    assert data["h3"]["status"] == "planned", data["h3"]


def test_command_timeout_names_the_op(bed: Bed, hosts3: list[str], tmp_path) -> None:
    stack = tmp_path / "slow"
    stack.mkdir()
    (stack / "stack.toml").write_text(
        '[stack]\nname = "slow"\ndescription = "an init step that outlives the command timeout"\n'
        '[services.idle.program]\ncommand = "/bin/sleep 100000"\n'
        '[[services.idle.init]]\nid = "wait"\nstage = "prestart"\nrun = "sleep 120"\nverify = "true"\n'
    )
    tmp_path.chmod(0o755)
    r = devkit(
        bed,
        "provision",
        "h2",
        "--stack",
        str(stack),
        "--base-dir",
        str(tmp_path / "b-{host}"),
        "--command-timeout",
        "25",
        "--format",
        "json",
        timeout=240,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    host = json.loads(r.stdout)["hosts"][0]
    assert host["error"]["op"] == "init:idle.wait", host
    assert "timed out" in host["error"]["message"] or "timeout" in host["error"]["message"], host
    devkit(
        bed,
        "teardown",
        "h2",
        "--stack",
        str(stack),
        "--base-dir",
        str(tmp_path / "b-{host}"),
        "--purge",
    )
