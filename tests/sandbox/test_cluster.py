"""A cluster of separate hosts, per Backend.AI line: a manager host and two agent hosts, each an
isolated sandbox (its own root filesystem, as a VM has), 23.9.10 on bookworm and 26.9.6 on trixie.

One provisioning per line serves every test of that line (they run in file order and build on it):
the agents start and are ALIVE at the hosts' private addresses, a session pinned to each agent
prints 42, a file written into a vfolder on the manager host is read by a session on an agent host
(its agent host mounts the manager host's vfolder root with sshfs), no host listens on a wildcard
address, and a second run changes nothing. On the current line, the second agent host has no
/dev/fuse: it starts all the same, `devkit status` says in one line that vfolder mounts do not work
there, and a session without vfolders runs on it. Then teardown undoes the share on both sides.
The network-namespace cluster (one filesystem) is tests/e2e/test_sessions.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests import docs_examples
from tests.e2e.checks import ROOT, phases
from tests.sandbox.conftest import down_all, leftovers, need
from tests.ssh.conftest import Bed, devkit, failed, isolated_env, ssh

# a line's first test also sets up its cluster (three sandboxes and a provision allowed 1800 s),
# after the previous line's teardown: on a loaded machine that is more than the default 600 s
pytestmark = [pytest.mark.root, pytest.mark.ssh, pytest.mark.timeout(2400)]


class Line(NamedTuple):
    name: str  # the release line
    release: str  # the Debian of its Python
    version: str
    without_fuse: tuple[str, ...]  # agent hosts whose /dev/fuse is taken away before provisioning
    # whose vfolder: the admin's own; on 26.9, where a user's own folder lives in a personal
    # project that the stack's fixture does not make, the default project's
    project_folder: bool = False


LINES = (
    Line("23.09", "bookworm", "23.9.10", ()),
    Line("26", "trixie", "26.9.6", ("a2",), project_folder=True),
)
MANAGER, AGENTS = "m", ("a1", "a2")
HOSTS = (MANAGER, *AGENTS)
WHEELS = Path.home() / ".cache" / "devkit-tests" / "wheel-cache"


class Cluster(NamedTuple):
    bed: Bed
    line: Line
    first: dict[str, Any]  # the first provision's JSON
    base: dict[str, str]  # each host's base dir
    address: dict[str, str]  # each host's private address
    phase: Any

    def devkit(self, *args: str, timeout: float = 600) -> Any:
        return devkit(self.bed, *args, timeout=timeout, env={"DEVKIT_WHEEL_CACHE": str(WHEELS)})

    def on(self, host: str, script: str, timeout: float = 300) -> Any:
        """A command on a host with the stack's admin keypair and CLI (the manager host's)."""
        env = shlex.quote(f"{self.base[MANAGER]}/client/env-local-admin-api.sh")
        pre = f". {env} && " if host == MANAGER else ""
        return ssh(self.bed.env, host, f"{pre}cd /tmp && {script}", timeout=timeout)


def provision(c: Bed, line: Line, *more: str) -> Any:
    return devkit(
        c,
        "provision",
        "--manager",
        *HOSTS,
        "--set",
        f"backend_ai.version={line.version}",
        *more,
        "--format",
        "json",
        timeout=1800,
        env={"DEVKIT_WHEEL_CACHE": str(WHEELS)},
    )


@pytest.fixture(scope="module", params=LINES, ids=[x.name for x in LINES])
def c(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The line's cluster, provisioned once for all of this module's tests."""
    need()
    line: Line = request.param
    d = Path(tempfile.mkdtemp(prefix="dkcl-", dir="/tmp"))
    d.chmod(0o755)
    (d / "pyproject.toml").write_text("[tool.devkit]\n")
    bed = Bed(d, isolated_env(d), "")
    out = ROOT / ".cache" / f"cluster-{line.name}-timings.txt"
    try:
        with phases(f"cluster of isolated hosts, Backend.AI {line.version}", out) as phase:
            with phase("three sandboxes up"):
                for host in HOSTS:
                    r = devkit(bed, "sandbox", "up", host, "--release", line.release, timeout=900)
                    assert r.returncode == 0, r.stdout + r.stderr
                for host in line.without_fuse:  # as on a machine whose kernel has no FUSE
                    assert ssh(bed.env, host, "rm /dev/fuse").returncode == 0
            with phase("provision --manager m a1 a2"):
                r = provision(bed, line)
                assert r.returncode == 0, failed(r.stdout) + r.stderr
            first = json.loads(r.stdout)
            state = Path(bed.env["DEVKIT_STATE_DIR"]) / "sandbox"
            address = {
                h: json.loads((state / h / "sandbox.json").read_text())["address"] for h in HOSTS
            }
            base = {h: _base(bed, h) for h in HOSTS}
            yield Cluster(bed, line, first, base, address, phase)
    finally:
        try:
            down_all(bed)
            assert leftovers(bed) == []
        finally:
            shutil.rmtree(d, ignore_errors=True)


def _base(bed: Bed, host: str) -> str:
    r = devkit(bed, "status", host, "--format", "json")
    return str(json.loads(r.stdout)["base"])


def test_every_host_provisioned_and_each_agent_host_shares_the_vfolder_root(c: Cluster) -> None:
    by = {h["host"]: h for h in c.first["hosts"]}
    assert {h: x["status"] for h, x in by.items()} == dict.fromkeys(HOSTS, "changed")
    for host in AGENTS:
        ops = {(o["id"], o["action"]) for o in by[host]["ops"]}
        assert ("share", "mount") in ops, ops
    ops = {o["id"] for o in by[MANAGER]["ops"]}
    assert {"share:key", "share:authorize", "share:mark"} <= ops, ops
    vfroot = f"{c.base[MANAGER]}/data/vfroot"
    for host in AGENTS:
        r = ssh(c.bed.env, host, f"grep -F ' {vfroot} ' /proc/self/mountinfo || true")
        if host in c.line.without_fuse:
            assert r.stdout == "", r.stdout
        else:  # the manager host's folder, by its private address, at the same path
            assert f"fuse.sshfs devkit-share:{vfroot}" in r.stdout, r.stdout


def status(c: Cluster) -> dict[str, Any]:
    r = c.devkit("status", "--manager", *HOSTS, "--format", "json")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return dict(json.loads(r.stdout))


def test_status_lists_three_agents_alive_at_private_addresses(c: Cluster) -> None:
    with c.phase("status --manager: three agents ALIVE"):
        st = status(c)
    assert st["ok"] and st["cluster"]["ok"], st
    members = {ln.split()[0]: ln.split()[1:] for ln in st["cluster"]["members"]}
    want = {"i-devkit-agent": MANAGER, "i-a1": "a1", "i-a2": "a2"}
    assert set(members) == set(want), members
    for agent, host in want.items():
        state, addr = members[agent]
        assert state == "ALIVE", members
        assert addr == f"tcp://{c.address[host]}:6011", members
        assert ipaddress.ip_address(c.address[host]).is_private
    notes = {h["host"]: h["notes"] for h in st["hosts"]}
    for host in AGENTS:
        said = [n for n in notes[host] if "vfolder mounts" in n]
        assert len(said) == 1, notes[host]
        if host in c.line.without_fuse:
            assert said[0].startswith("vfolder mounts do not work on this host: "), said
            assert "no /dev/fuse" in said[0], said
        else:
            assert re.fullmatch(
                r"vfolder mounts: /\S+ is mounted from root@[\d.]+ \(sshfs\)", said[0]
            )
    if c.line.without_fuse:  # the same, as text: docs/backend.ai/cluster.md shows it
        r = c.devkit("status", "--manager", *HOSTS)
        assert r.returncode == 0, r.stdout + r.stderr
        docs_examples.compare("cluster-status-no-fuse", [r.stdout])


def sql(c: Cluster, query: str) -> str:
    """A query's answer from the manager host's database."""
    secret = shlex.quote(f"{c.base[MANAGER]}/secrets/postgres_password")
    r = c.on(
        MANAGER,
        f"PGPASSWORD=$(cat {secret}) /usr/lib/postgresql/*/bin/psql -X -tA -h 127.0.0.1 -p 8101 "
        f"-U bai -d backend -c {shlex.quote(query)}",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return str(r.stdout.strip())


def run_on(c: Cluster, agent: str, code: str, *more: str) -> Any:
    cmd = (
        f"backend.ai run --rm --assign-agent {agent} {' '.join(more)} -c {shlex.quote(code)} python"
    )
    return c.on(MANAGER, cmd)


def test_a_session_pinned_to_each_agent_prints_42(c: Cluster) -> None:
    for agent in ("i-devkit-agent", "i-a1", "i-a2"):
        with c.phase(f"a session on {agent}: 42"):
            r = run_on(c, agent, "print(6*7)")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "42" in r.stdout.splitlines(), r.stdout + r.stderr


def test_a_file_written_on_the_manager_host_is_read_in_a_session_on_an_agent_host(
    c: Cluster,
) -> None:
    create = "backend.ai vfolder create dk-data local:volume1"
    if c.line.project_folder:
        create += " -g " + sql(c, "select id from groups where name = 'default'")
    r = c.on(MANAGER, create)
    assert r.returncode == 0, r.stdout + r.stderr
    # the folder the storage-proxy made for it on the manager host (volume/QUOTA-SCOPE/ab/cd/rest)
    vfid = sql(c, "select replace(id::text, '-', '') from vfolders where name = 'dk-data'")
    assert len(vfid) == 32, vfid
    volume = f"{c.base[MANAGER]}/data/vfroot/local/volume1"
    r = c.on(MANAGER, f"find {shlex.quote(volume)} -mindepth 4 -maxdepth 4 -type d")
    [folder] = [p for p in r.stdout.split() if "".join(p.split("/")[-3:]) == vfid]
    r = c.on(MANAGER, f"echo 'written on the manager host' > {shlex.quote(folder)}/note.txt")
    assert r.returncode == 0, r.stdout + r.stderr
    code = "print(open('/home/work/dk-data/note.txt').read().upper())"
    for host in AGENTS:
        if host in c.line.without_fuse:
            continue
        with c.phase(f"a vfolder read in a session on {host}"):
            r = run_on(c, f"i-{host}", code, "-m", "dk-data")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "WRITTEN ON THE MANAGER HOST" in r.stdout, r.stdout + r.stderr


def test_no_host_listens_on_a_wildcard_address(c: Cluster) -> None:
    for host in HOSTS:
        r = ssh(c.bed.env, host, "ss -Hltnp")
        assert r.returncode == 0, r.stderr
        wild = [
            ln
            for ln in r.stdout.splitlines()
            if ln.split()[3].rsplit(":", 1)[0] in ("0.0.0.0", "*", "[::]") and '"sshd"' not in ln
        ]
        assert wild == [], f"{host}:\n{r.stdout}"
        mine = c.address[host]
        beyond = {
            ln.split()[3]
            for ln in r.stdout.splitlines()
            if not ln.split()[3].startswith(("127.", "[::1]")) and '"sshd"' not in ln
        }
        assert all(a.startswith(mine + ":") for a in beyond), beyond


def test_a_second_run_changes_nothing(c: Cluster) -> None:
    with c.phase("second provision: nothing changes"):
        start = time.monotonic()
        r = provision(c.bed, c.line)
        took = time.monotonic() - start
    assert r.returncode == 0, failed(r.stdout) + r.stderr
    by = {h["host"]: (h["status"], h["ops"]) for h in json.loads(r.stdout)["hosts"]}
    assert {h: s for h, (s, _) in by.items()} == dict.fromkeys(HOSTS, "unchanged"), by
    assert took < 60, took


def test_teardown_undoes_the_share_on_both_sides(c: Cluster) -> None:
    host = AGENTS[0]
    vfroot = f"{c.base[MANAGER]}/data/vfroot"
    with (
        c.phase("teardown --purge: an agent host and the manager host"),
        ThreadPoolExecutor() as ex,
    ):
        done = list(ex.map(lambda h: c.devkit("teardown", h, "--purge"), (host, MANAGER)))
    for r in done:
        assert r.returncode == 0, r.stdout + r.stderr
    assert f"{host}: unmounted {vfroot}" in done[0].stdout, done[0].stdout
    r = ssh(c.bed.env, host, f"grep -c fuse.sshfs /proc/self/mountinfo; test -e {vfroot}; echo $?")
    assert r.stdout.split() == ["0", "1"], r.stdout + r.stderr
    r = ssh(c.bed.env, MANAGER, "grep -c devkit-share /root/.ssh/authorized_keys")
    assert r.stdout.strip() == "0", r.stdout + r.stderr
