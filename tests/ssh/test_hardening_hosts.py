"""Issue 22 (Hardening III) on real hosts (network-namespace sandboxes with their own sshd): a
base dir devkit did not make is never taken over nor purged; `sandbox up` waits for a slow sshd to
listen and leaves nothing behind when it fails; a user ssh config devkit cannot edit stops `up`
before anything starts. Each test failed before its fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.errors import DevkitError
from devkit.sandbox import bridge, sshd
from devkit.sandbox import lifecycle as sandbox
from tests.ssh.conftest import Bed, devkit, drop_lock_dirs, isolated_env, lock_dirs

pytestmark = [pytest.mark.ssh, pytest.mark.root]

STACK = '[stack]\nname = "idle"\n[services.idle.program]\ncommand = "/bin/sleep 100000"\n'


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: sandbox hosts are network namespaces with their own sshd")
    for tool in ("/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/sbin/ip"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")


def _down_all(b: Bed) -> None:
    for box in sorted((b.dir / "state" / "sandbox").glob("*/sandbox.json")):
        devkit(b, "sandbox", "down", box.parent.name, timeout=60)


def _netns_of(b: Bed) -> list[str]:
    tag = bridge.tag(b.dir / "state" / "sandbox")
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(f"dk{tag}-")]


def _links_of(b: Bed) -> list[str]:
    tag = bridge.tag(b.dir / "state" / "sandbox")
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if f"dkb{tag}" in ln or f"dkv{tag}" in ln]


def _scrub(b: Bed) -> None:
    """What a failed `up` of the code before the fix left: every process in the bed's network
    namespaces (by pid), the namespaces, the veths and the bridge."""
    for ns in _netns_of(b):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in pids.split():
            subprocess.run(["kill", "-9", pid], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    for ln in _links_of(b):
        subprocess.run(["ip", "link", "del", ln.split(":")[1].strip().split("@")[0]], check=False)


@pytest.fixture
def bed() -> Iterator[Bed]:
    _need()
    d = Path(tempfile.mkdtemp(prefix="dkhh-", dir="/tmp"))
    d.chmod(0o755)
    (d / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "halfstack"\n')
    (d / "idle").mkdir()
    (d / "idle" / "stack.toml").write_text(STACK)
    b = Bed(d, isolated_env(d), "")
    locks = lock_dirs()
    try:
        yield b
    finally:
        (d / "ssh_config").unlink(missing_ok=True)
        _down_all(b)
        _scrub(b)
        drop_lock_dirs(locks)
        shutil.rmtree(d, ignore_errors=True)


# --- 4: a base dir devkit did not make is neither taken over nor purged -------------------------


def test_a_folder_with_the_users_files_is_refused_and_only_what_devkit_made_is_purged(
    bed: Bed,
) -> None:
    r = devkit(bed, "sandbox", "up", "hh1", "--isolation", "netns", timeout=60)
    assert r.returncode == 0, r.stderr
    theirs = bed.dir / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("the user's\n")
    p = devkit(bed, "provision", "hh1", "--stack", str(bed.dir / "idle"), "--base-dir", str(theirs))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "holds files that are not devkit's" in p.stdout and "nothing was changed" in p.stdout
    assert sorted(x.name for x in theirs.iterdir()) == ["notes.txt"]

    made = bed.dir / "made" / "{host}"
    p = devkit(bed, "provision", "hh1", "--stack", str(bed.dir / "idle"), "--base-dir", str(made))
    assert p.returncode == 0, p.stdout + p.stderr
    made = bed.dir / "made" / "hh1"
    assert (made / ".devkit-origin").read_text() == "created\n"
    empty = bed.dir / "empty"
    empty.mkdir()
    p = devkit(bed, "provision", "hh1", "--stack", str(bed.dir / "idle"), "--base-dir", str(empty))
    assert p.returncode == 0, p.stdout + p.stderr
    assert (empty / ".devkit-origin").read_text() == "adopted\n"

    p = devkit(
        bed, "teardown", "hh1", "--stack", str(bed.dir / "idle"), "--base-dir", str(made), "--purge"
    )
    assert p.returncode == 0 and f"removed {made} (devkit made it)" in p.stdout, p.stdout + p.stderr
    assert not made.exists()
    p = devkit(
        bed,
        "teardown",
        "hh1",
        "--stack",
        str(bed.dir / "idle"),
        "--base-dir",
        str(empty),
        "--purge",
    )
    assert p.returncode == 0 and f"kept {empty}" in p.stdout, p.stdout + p.stderr
    assert (empty / ".devkit-stack").is_file()  # stopped, and left where the user put it


# --- Also: `sandbox up` waits for a slow sshd, and a failed `up` leaves nothing ----------------


@pytest.fixture
def in_bed(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> Bed:
    for key in ("DEVKIT_STATE_DIR", "DEVKIT_SSH_CONFIG", "DEVKIT_KNOWN_HOSTS"):
        monkeypatch.setenv(key, bed.env[key])
    return bed


def _sshd_wrapper(b: Bed, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd as a machine too busy to start it at once would run it (or as a broken one)."""
    wrapper = b.dir / "sshd"
    wrapper.write_text(f"#!/bin/sh\n{script}\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(sshd, "SSHD", str(wrapper))


def test_up_waits_for_an_sshd_that_is_slow_to_listen(
    in_bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sshd_wrapper(in_bed, 'sleep 13; exec /usr/sbin/sshd "$@"', monkeypatch)
    s = sandbox.up("slow", isolation="netns")
    assert sandbox.alive(s.pid) and sshd.answers(s.address, s.port)
    sandbox.down("slow")
    assert _netns_of(in_bed) == []


def test_a_failed_up_removes_what_it_started(in_bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    _sshd_wrapper(in_bed, 'echo "sshd: a broken config" >&2; exit 1', monkeypatch)
    with pytest.raises(DevkitError, match="sshd exited: sshd: a broken config"):
        sandbox.up("broken", isolation="netns")
    assert not (in_bed.dir / "state" / "sandbox" / "broken").exists()
    assert _netns_of(in_bed) == [] and _links_of(in_bed) == []


# --- 15: an ssh config devkit cannot edit stops `up` before anything starts --------------------


def test_up_with_a_config_it_cannot_edit_starts_nothing(bed: Bed) -> None:
    (bed.dir / "ssh_config").write_bytes(b"Host caf\xe9\n  HostName 10.0.0.9\n")
    p = devkit(bed, "sandbox", "up", "hh2", "--isolation", "netns", timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith(f"devkit: error: {bed.dir / 'ssh_config'}: byte 8 is not UTF-8")
    assert not list((bed.dir / "state").glob("sandbox/*/sandbox.json"))
    assert _netns_of(bed) == [] and _links_of(bed) == []
