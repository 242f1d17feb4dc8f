"""Compute sessions on the real Backend.AI 23.9.10 stack, on sandbox hosts, with phase timings.

One sandbox host first: the kernel image built without a registry (its Debian root filesystem from
this machine's image cache, made by debootstrap on a first run), registered with the manager; a
session reaches RUNNING, `run --rm` prints 42, a file written into a vfolder on the host is read in a
session, nothing is left behind, and a second provision changes nothing. Then the same host becomes a
cluster's manager host with two agent hosts on this machine's filesystem (network-namespace hosts:
the vfolder root is theirs as it is, nothing is mounted), and a fourth host joins. A cluster of
separate hosts is tests/sandbox/test_cluster.py.

The hosts share this module: each provision is minutes of work, so the tests run in file order and
build on each other.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.e2e.checks import devkit_in
from tests.e2e.test_backendai import _need, mounts_under
from tests.ssh.conftest import children, drop_lock_dirs, isolated_env, lock_dirs, ssh

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.ssh]

SOLO = "s1"
# network-namespace sandboxes: they share this machine's filesystem (the tests read the hosts' base
# dirs and write a vfolder file from here) and sit on one bridge, where they reach each other
NETNS = ("--isolation", "netns")
TAG = "lablup/python:3.11-debian12"


class Bed(NamedTuple):
    dir: Path
    env: dict[str, str]
    wheels: Path

    def base(self, host: str) -> Path:
        return self.dir / "base" / host


def devkit(
    bed: Bed, *args: str, timeout: float = 1200, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return devkit_in(bed.dir, bed.env, *args, timeout=timeout, check=check)


def on(bed: Bed, host: str, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A shell command on a sandbox host, with the stack's admin keypair and CLI on PATH."""
    env = bed.base(host) / "client" / "env-local-admin-api.sh"
    return ssh(bed.env, host, f". {shlex.quote(str(env))} && cd /tmp && {script}", timeout=timeout)


def docker(bed: Bed, host: str, args: str) -> str:
    sock = bed.base(host) / "run" / "docker.sock"
    r = on(bed, host, f"DOCKER_HOST=unix://{sock} docker {args}")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def sql(bed: Bed, host: str, query: str) -> str:
    base = shlex.quote(str(bed.base(host)))
    r = on(
        bed,
        host,
        f"PGPASSWORD=$(cat {base}/secrets/postgres_password) /usr/lib/postgresql/15/bin/psql "
        f"-X -tA -h 127.0.0.1 -p 8101 -U bai -d backend -c {shlex.quote(query)}",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def provision(bed: Bed, *args: str) -> dict[str, Any]:
    r = devkit(
        bed,
        "provision",
        *args,
        "--base-dir",
        str(bed.dir / "base" / "{host}"),
        "--wheelhouse",
        str(bed.wheels),
        "--format",
        "json",
    )
    return json.loads(r.stdout)


def pids(bed: Bed, host: str) -> dict[str, int]:
    r = devkit(bed, "status", host, "--base-dir", str(bed.base(host)), "--format", "json")
    return {s["service"]: s["pid"] for s in json.loads(r.stdout)["services"]}


def engine_can_raise_rlimits() -> bool:
    """Can a process here raise its hard nofile limit (CAP_SYS_RESOURCE)? The sandboxes share it."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    if hard >= nr_open:
        return True
    probe = "import resource as r; s, h = r.getrlimit(r.RLIMIT_NOFILE); r.setrlimit(r.RLIMIT_NOFILE, (s, h + 1))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    _need()
    if not shutil.which("debootstrap") and not any(
        Path(os.environ.get("DEVKIT_IMAGE_CACHE", "/var/cache/devkit/images")).glob("*.tar.gz")
    ):
        pytest.skip("debootstrap is not installed: it builds the kernel image's root filesystem")
    d = Path(tempfile.mkdtemp(prefix="dksess-", dir="/tmp"))
    d.chmod(0o755)  # the `postgres` user must reach its data dir below here
    (d / "pyproject.toml").write_text("[tool.devkit]\n")
    wheels = Path(
        os.environ.get("DEVKIT_TEST_WHEELS") or Path.home() / ".cache" / "devkit-tests" / "wheels"
    )
    wheels.mkdir(parents=True, exist_ok=True)
    b = Bed(d, isolated_env(d), wheels)
    locks = lock_dirs()
    yield b
    # whatever happened: every stack down (dockerd stops its containers), leftover mounts, the
    # sandboxes by pid, the files
    for marker in sorted((d / "base").glob("*/.devkit-stack")):
        host = marker.parent.name
        devkit(b, "teardown", host, "--base-dir", str(marker.parent), "--purge", check=False)
    for mp in sorted(mounts_under(d), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], check=False)
    for box in sorted((d / "state" / "sandbox").glob("*/sandbox.json")):
        devkit(b, "sandbox", "down", box.parent.name, timeout=120, check=False)
    drop_lock_dirs(locks)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def solo(bed: Bed, phase: Any) -> str:
    with phase("sessions: sandbox up"):
        devkit(bed, "sandbox", "up", SOLO, *NETNS, timeout=120)
    with phase("sessions: first provision (stack and image build)"):
        data = provision(bed, SOLO)
    [host] = data["hosts"]
    ops = {(o["id"], o["action"]) for o in host["ops"]}
    assert ("image:python", "build") in ops and ("image:python", "register") in ops, ops
    assert (("rlimit-hook", "install") in ops) is not engine_can_raise_rlimits()
    return SOLO


def test_a_second_provision_changes_nothing_and_keeps_the_image(
    bed: Bed, solo: str, phase: Any
) -> None:
    image = docker(bed, solo, f"image inspect --format '{{{{.Id}}}}' {TAG}")
    before = pids(bed, solo)
    with phase("sessions: second provision"):
        data = provision(bed, solo)
    assert data["hosts"][0]["status"] == "unchanged", data
    assert docker(bed, solo, f"image inspect --format '{{{{.Id}}}}' {TAG}") == image
    assert pids(bed, solo) == before
    # the manager knows the image under its alias, with the id the engine has
    row = sql(
        bed,
        solo,
        "select i.name, trim(i.config_digest) from image_aliases a join images i on i.id = a.image where a.alias = 'python'",
    )
    assert row == f"index.docker.io/{TAG}|{image}"


def test_status_names_the_image_and_says_when_rlimits_are_capped(bed: Bed, solo: str) -> None:
    r = devkit(bed, "status", solo, "--base-dir", str(bed.base(solo)))
    assert re.search(rf"image {re.escape(TAG)} [0-9a-f]{{12}}, registered", r.stdout), r.stdout
    capped = "cannot raise its hard rlimits" in r.stdout
    assert capped is not engine_can_raise_rlimits(), r.stdout


def test_a_session_reaches_running_and_leaves_no_container(bed: Bed, solo: str, phase: Any) -> None:
    with phase("sessions: session create -> RUNNING"):
        r = on(bed, solo, "backend.ai session create --name dk-running python")
    assert r.returncode == 0 and "is created and ready" in r.stderr, r.stdout + r.stderr
    assert sql(bed, solo, "select status from sessions where name = 'dk-running'") == "RUNNING"
    kernels = docker(bed, solo, "ps -q --filter label=ai.backend.kernel-id")
    assert len(kernels.split()) == 1
    with phase("sessions: session destroy"):
        r = on(bed, solo, "backend.ai session destroy dk-running")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sql(bed, solo, "select status from sessions where name = 'dk-running'") in (
        "TERMINATED",
        "TERMINATING",
    )
    assert docker(bed, solo, "ps -aq --filter label=ai.backend.kernel-id") == ""


def test_run_rm_prints_42(bed: Bed, solo: str, phase: Any) -> None:
    with phase("sessions: run --rm print(6*7)"):
        r = on(bed, solo, "backend.ai run --rm -c 'print(6*7)' python")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "42" in r.stdout.splitlines(), r.stdout
    assert docker(bed, solo, "ps -aq --filter label=ai.backend.kernel-id") == ""


def test_a_file_written_into_a_vfolder_on_the_host_is_read_in_a_session(
    bed: Bed, solo: str
) -> None:
    r = on(bed, solo, "backend.ai vfolder create dk-data local:volume1")
    assert r.returncode == 0, r.stdout + r.stderr
    vfid = sql(bed, solo, "select replace(id::text, '-', '') from vfolders where name = 'dk-data'")
    [folder] = [
        p
        for p in (bed.base(solo) / "data" / "vfroot" / "local" / "volume1").glob("*/*/*/*")
        if "".join(p.parts[-3:]) == vfid
    ]
    (folder / "note.txt").write_text("written on the host\n")
    code = "print(open('/home/work/dk-data/note.txt').read().upper())"
    r = on(bed, solo, f"backend.ai run --rm -m dk-data -c {shlex.quote(code)} python")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WRITTEN ON THE HOST" in r.stdout, r.stdout


REGISTRY = "localhost:5000"
PULLED = f"{REGISTRY}/lablup/python:3.11-debian12"


def test_images_pulled_from_a_registry_replace_the_built_one_and_back(
    bed: Bed, solo: str, phase: Any
) -> None:
    """`[tool.devkit.provision] images`: the engine pulls them and the manager rescans their registry
    (Backend.AI's own way, for a host with internet), here from a registry on the host's loopback
    (Debian's docker-registry) holding the image built above under its name."""
    import signal
    import time

    reg = bed.dir / "registry"
    (reg / "data").mkdir(parents=True)
    (reg / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {reg / 'data'}\n"
        "http:\n  addr: 127.0.0.1:5000\n"
    )
    # its own session, no terminal and no pipe back: the SSH command returns at once
    serve = f"/usr/bin/docker-registry serve {reg}/config.yml"
    r = on(bed, solo, f"{{ setsid {serve} </dev/null >{reg}/log 2>&1 & }}; echo $!")
    pid = int(r.stdout.strip())
    pyproject = bed.dir / "pyproject.toml"
    try:
        wait_for(
            lambda: (
                on(
                    bed,
                    solo,
                    "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 5000))'",
                ).returncode
                == 0
            ),
            30,
            "the registry listening",
        )
        # as a registry serves kernel images: a multi-architecture list (Backend.AI's scanner
        # reads nothing else), here of one architecture
        docker(bed, solo, f"tag {TAG} {PULLED}-amd64")
        docker(bed, solo, f"push -q {PULLED}-amd64")
        # (the docker CLI keeps the list it makes in ~/.docker: --purge leaves nothing there)
        docker(bed, solo, f"manifest create --amend --insecure {PULLED} {PULLED}-amd64")
        docker(bed, solo, f"manifest push --purge --insecure {PULLED}")
        docker(bed, solo, f"rmi {PULLED}-amd64")  # only the name: the pull below is real
        pyproject.write_text(f'[tool.devkit.provision]\nimages = ["{PULLED}"]\n')
        with phase("sessions: provision pulling an image from a registry"):
            data = provision(bed, solo)
        ops = {(o["id"], o["action"]) for o in data["hosts"][0]["ops"]}
        assert {("image:python", "pull"), ("image:python", "register")} <= ops, ops
        assert ("image:python", "build") not in ops
        row = sql(
            bed,
            solo,
            "select i.name, i.is_local from image_aliases a join images i on i.id = a.image "
            "where a.alias = 'python'",
        )
        assert row == f"{PULLED}|f", row  # known from the registry: agents would pull it
        # a session on it: the manager looks the registry up in etcd by its quoted name
        # (localhost%3A5000) when the session starts
        r = on(bed, solo, "backend.ai run --rm -c 'print(6*7)' python")
        assert r.returncode == 0 and "42" in r.stdout.splitlines(), r.stdout + r.stderr
        assert provision(bed, solo)["hosts"][0]["status"] == "unchanged"
    finally:
        pyproject.write_text("[tool.devkit]\n")
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
        # back to the image built here (also after a failure: the cluster's tests need it)
        data = provision(bed, solo)
    # registered again under the alias, nothing rebuilt
    ops = {(o["id"], o["action"]) for o in data["hosts"][0]["ops"]}
    assert ("image:python", "register") in ops and ("image:python", "build") not in ops, ops
    row = sql(
        bed,
        solo,
        "select i.name from image_aliases a join images i on i.id = a.image where a.alias = 'python'",
    )
    assert row == f"index.docker.io/{TAG}"
    assert provision(bed, solo)["hosts"][0]["status"] == "unchanged"


# --- a cluster: the host above becomes the manager host of two agent hosts, then a third joins ----

AGENTS = ("a1", "a2")
# a frozen agent is LOST this many seconds after its last heartbeat (Backend.AI's default is 40)
LOST_AFTER = ("--set", "manager.heartbeat_timeout=8", "--set", "agent.heartbeat_interval=2")


def cluster_provision(bed: Bed, *agents: str) -> dict[str, Any]:
    return provision(bed, "--manager", SOLO, *agents, *LOST_AFTER)


def cluster_status(bed: Bed, *agents: str) -> dict[str, Any]:
    r = devkit(
        bed,
        "status",
        "--manager",
        SOLO,
        *agents,
        "--base-dir",
        str(bed.dir / "base" / "{host}"),
        "--format",
        "json",
        check=False,
    )
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return json.loads(r.stdout)


def members(bed: Bed, *agents: str) -> dict[str, tuple[str, str]]:
    """agent id -> (status, address), as the manager host's database has them."""
    lines = cluster_status(bed, *agents)["cluster"]["members"]
    return {ln.split()[0]: (ln.split()[1], ln.split()[2]) for ln in lines}


def sandbox_address(bed: Bed, host: str) -> str:
    return json.loads((bed.dir / "state" / "sandbox" / host / "sandbox.json").read_text())[
        "address"
    ]


def wait_for(check: Any, timeout: float = 90, what: str = "") -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture(scope="module")
def cluster(bed: Bed, solo: str, phase: Any) -> tuple[str, ...]:
    with phase("cluster: two more sandbox hosts up"):
        for host in AGENTS:
            devkit(bed, "sandbox", "up", host, *NETNS, timeout=120)
    with phase("cluster: provision (manager host reconfigured, 2 agent hosts)"):
        data = cluster_provision(bed, *AGENTS)
    by = {h["host"]: h for h in data["hosts"]}
    assert {h: x["status"] for h, x in by.items()} == dict.fromkeys((SOLO, *AGENTS), "changed")
    for host in AGENTS:  # the image is built on every agent host, registered only where the db is
        ops = {(o["id"], o["action"]) for o in by[host]["ops"]}
        assert ("image:python", "build") in ops and ("image:python", "register") not in ops
    # one filesystem: the manager host's vfolder root is every host's as it is; nothing is
    # mounted, and no key is authorized (in this machine's own ~/.ssh)
    assert not [o for h in by.values() for o in h["ops"] if o["id"].startswith("share")], by
    assert " fuse.sshfs " not in Path("/proc/self/mountinfo").read_text()
    return (SOLO, *AGENTS)


def test_every_agent_of_the_cluster_is_alive_at_its_private_address(
    bed: Bed, cluster: tuple[str, ...]
) -> None:
    st = cluster_status(bed, *AGENTS)
    assert st["ok"] and st["cluster"]["ok"], st
    assert [h["host"] for h in st["hosts"]] == list(cluster)
    assert {s["service"] for s in st["hosts"][1]["services"]} == {"docker", "agent"}
    got = members(bed, *AGENTS)
    assert got["i-devkit-agent"][0] == "ALIVE"
    for host in AGENTS:
        assert got[f"i-{host}"] == ("ALIVE", f"tcp://{sandbox_address(bed, host)}:6011")


def test_the_manager_host_listens_on_loopback_and_its_private_address_never_on_all(
    bed: Bed, cluster: tuple[str, ...]
) -> None:
    address = sandbox_address(bed, SOLO)
    listening = on(bed, SOLO, "cat /proc/net/tcp").stdout.splitlines()[1:]
    by_port: dict[int, set[str]] = {}
    for line in listening:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            ip_hex, port_hex = local.split(":")
            ip = ".".join(str(int(ip_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
            by_port.setdefault(int(port_hex, 16), set()).add(ip)
    assert by_port[8121] == {"127.0.0.1", address}  # etcd
    assert by_port[8111] == {"127.0.0.1", address}  # redis
    assert by_port[6011] == {address}  # the agent's RPC, where the manager calls it
    everywhere = {p for p, ips in by_port.items() if "0.0.0.0" in ips}
    assert everywhere <= {22}, everywhere  # only the sandbox's own sshd


def test_sessions_land_on_different_agents(bed: Bed, cluster: tuple[str, ...], phase: Any) -> None:
    names = [f"dk-spread-{i}" for i in range(3)]
    with phase("cluster: 3 sessions, one per agent"):
        for name in names:
            r = on(bed, SOLO, f"backend.ai session create --name {name} python")
            assert r.returncode == 0 and "is created and ready" in r.stderr, r.stdout + r.stderr
    rows = sql(
        bed,
        SOLO,
        "select k.agent from kernels k join sessions s on s.id = k.session_id "
        f"where s.name in ({', '.join(repr(n) for n in names)}) and k.status = 'RUNNING'",
    ).split()
    assert sorted(rows) == ["i-a1", "i-a2", "i-devkit-agent"], rows
    for name in names:
        assert on(bed, SOLO, f"backend.ai session destroy {name}").returncode == 0


def test_a_stopped_agent_is_lost_and_new_sessions_run_on_the_others(
    bed: Bed, cluster: tuple[str, ...], phase: Any
) -> None:
    import signal

    # the agent devkit started on a2 (its supervisord's child) and its worker processes, frozen:
    # no heartbeat and no goodbye, as if the host had gone away
    top = pids(bed, "a2")["agent"]
    frozen = [top, *children(top)]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        with phase("cluster: a stopped agent marked LOST"):
            wait_for(lambda: members(bed, *AGENTS)["i-a2"][0] == "LOST", what="a2 LOST")
        assert not cluster_status(bed, *AGENTS)["cluster"]["ok"]
        r = on(bed, SOLO, "backend.ai run --rm -c 'print(6*7)' python")
        assert r.returncode == 0 and "42" in r.stdout.splitlines(), r.stdout + r.stderr
    finally:
        for pid in reversed(frozen):
            os.kill(pid, signal.SIGCONT)
    with phase("cluster: the agent back ALIVE"):
        wait_for(lambda: members(bed, *AGENTS)["i-a2"][0] == "ALIVE", what="a2 ALIVE again")


def test_a_fourth_host_joins_without_touching_the_others(
    bed: Bed, cluster: tuple[str, ...], phase: Any
) -> None:
    before = {h: pids(bed, h) for h in cluster}
    devkit(bed, "sandbox", "up", "a3", *NETNS, timeout=120)
    with phase("cluster: a fourth host joins"):
        data = cluster_provision(bed, *AGENTS, "a3")
    status = {h["host"]: h["status"] for h in data["hosts"]}
    ops = {
        h["host"]: [(o["id"], o["action"], o["detail"]) for o in h["ops"]] for h in data["hosts"]
    }
    assert status == {SOLO: "unchanged", "a1": "unchanged", "a2": "unchanged", "a3": "changed"}, ops
    assert {h: pids(bed, h) for h in cluster} == before
    got = members(bed, *AGENTS, "a3")
    assert got["i-a3"][0] == "ALIVE" and len(got) == 4, got
    assert cluster_status(bed, *AGENTS, "a3")["ok"]
