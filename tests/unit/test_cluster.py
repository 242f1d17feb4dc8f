"""A cluster through the in-memory FakeHost: what each role runs and listens on, and the order across
hosts (an agent host's agent starts after the manager host's run). tests/e2e/test_cluster.py runs it
on three and four real sandbox hosts."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from devkit.commands import _hosts as seam
from devkit.errors import DevkitError
from devkit.provision.engine import desired, facts, hosts
from devkit.provision.engine import run as engine
from devkit.provision.kinds import venvs
from devkit.provision.kinds.base import Desired
from devkit.provision.kinds.registry import load_stack
from devkit.provision.ssh.command import Command
from devkit.provision.ssh.connection import Result
from tests.fakehost import FakeHost, fresh_raw

ADDR = {"m1": "10.9.0.2", "a1": "10.9.0.3", "a2": "10.9.0.4"}


def target(name: str, role: str, with_agent: bool = True) -> hosts.Target:
    return hosts.Target(
        name, name, "backend.ai", f"/srv/{name}", {}, role=role, with_agent=with_agent
    )


# hosts that share one machine's filesystem (network-namespace hosts), each with a base dir of its
# own; tests/unit/test_cluster_share.py has hosts apart
ONE_MACHINE = "boot-1 mnt:[4026531840]"


def raw(name: str) -> dict[str, Any]:
    return fresh_raw(base=f"/srv/{name}", address=ADDR[name], filesystem=ONE_MACHINE)


def build(name: str, role: str, with_agent: bool = True) -> Desired:
    s = load_stack("backend.ai")._replace(wheels="remote")
    f = facts.parse(json.dumps(raw(name)))
    return desired.build(s, target(name, role, with_agent), {}, f, manager_address=ADDR["m1"])


def file(d: Desired, fid: str) -> str:
    return next(f.content for f in d.of("files") if f.id == fid)


def services(d: Desired) -> list[str]:
    return [p.name for p in d.of("programs").programs]


def test_the_manager_host_listens_on_its_private_address_too_never_on_all() -> None:
    d = build("m1", "manager")
    assert services(d) == [
        "postgres", "redis", "etcd", "docker", "storage-proxy", "manager", "agent", "webserver",
    ]  # fmt: skip
    etcd = file(d, "etcd.yml")
    assert '"http://127.0.0.1:8121,http://10.9.0.2:8121"' in etcd
    assert 'advertise-client-urls: "http://10.9.0.2:8121"' in etcd
    assert 'bind 127.0.0.1 "10.9.0.2"\nprotected-mode no\n' in file(d, "redis.conf")
    assert '"addr": "10.9.0.2:8111"' in file(d, "etcd-config.json")
    assert 'service-addr = { host = "127.0.0.1"' in file(d, "manager.toml")
    everything = "\n".join(f.content for f in d.of("files"))
    assert "0.0.0.0" not in everything.replace('"0.0.0.0/0"', "")  # the etcd subnets are filters
    assert d.of("images").register.strip()  # the images are registered where the database is
    without = build("m1", "manager", with_agent=False)
    assert "agent" not in services(without)


def test_an_agent_host_runs_only_dockerd_and_an_agent_pointed_at_the_manager_host() -> None:
    d = build("a1", "agent")
    assert services(d) == ["docker", "agent"]
    agent = file(d, "agent.toml")
    assert 'addr = { host = "10.9.0.2", port = 8121 }' in agent
    assert 'rpc-listen-addr = { host = "10.9.0.3", port = 6011 }' in agent
    assert 'id = "i-a1"' in agent
    health = next(p.health for p in d.of("programs").programs if p.name == "agent")
    assert "port 10.9.0.3 6011" in health and "http://10.9.0.2:8121" in health
    assert "/sorna/local/nodes/agents/i-a1/" in health and "psql" not in health
    assert d.of("images").images and not d.of("images").register.strip()  # built, not registered
    assert not any(i.service != "agent" for i in d.of("inits")) or not d.of("inits")
    # what it says at the end of a run: whose agent it is, not a web UI it does not run
    assert "the agent i-a1 of the manager host at 10.9.0.2" in d.notes and "web UI" not in d.notes


def test_a_host_on_its_own_keeps_everything_on_loopback() -> None:
    s = load_stack("backend.ai")._replace(wheels="remote")
    f = facts.parse(json.dumps(raw("m1")))
    d = desired.build(s, hosts.Target("m1", "m1", "backend.ai", "/srv/m1", {}), {}, f)
    assert "10.9.0.2" not in "\n".join(x.content for x in d.of("files"))
    assert 'id = "i-devkit-agent"' in file(d, "agent.toml")


def test_a_cluster_needs_addresses_the_hosts_reach_each_other_at() -> None:
    s = load_stack("backend.ai")._replace(wheels="remote")
    f = facts.parse(json.dumps(fresh_raw(base="/srv/a1")))  # no SSH_CONNECTION address
    with pytest.raises(DevkitError, match="cannot tell its address"):
        desired.build(s, target("a1", "agent"), {}, f, manager_address=ADDR["m1"])


class Recorded(FakeHost):
    """A FakeHost that also appends (host, op) to a log shared by the hosts of one run."""

    def __init__(self, name: str, seq: list[tuple[str, str]], lock: threading.Lock) -> None:
        super().__init__(name, raw(name))
        self.seq, self.lock = seq, lock

    def run(self, cmd: Command, op: str, **kw: Any) -> Result:
        with self.lock:
            self.seq.append((self.name, op))
        return super().run(cmd, op, **kw)


def cluster_run(fakes: dict[str, FakeHost]) -> list[Any]:
    s = load_stack("backend.ai")._replace(wheels="remote")
    jobs = [
        engine.Job(s, target(n, "manager" if n == "m1" else "agent")) for n in ("a1", "a2", "m1")
    ]
    return engine.run(jobs, engine.Options({}, parallel=2), lambda t: fakes[t.name], lambda e: None)


def test_agent_hosts_start_their_agent_after_the_manager_hosts_run(tmp_path: Path) -> None:
    seq: list[tuple[str, str]] = []
    lock = threading.Lock()
    fakes = {n: Recorded(n, seq, lock) for n in ADDR}
    for f in fakes.values():  # no image build in this test: the base image answers at once
        f.on(r"image inspect --format", stdout="sha256:" + "ef" * 32 + "\n")
    results = cluster_run(fakes)
    assert [r.status for r in results] == ["changed"] * 3, [r.error for r in results]
    last_of_manager = max(i for i, (h, _) in enumerate(seq) if h == "m1")
    for agent in ("a1", "a2"):
        first = seq.index((agent, "program:agent"))
        assert first > last_of_manager
        assert seq.index((agent, "program:docker")) < first  # its own dockerd did not wait
    assert "program:postgres" not in [op for h, op in seq if h != "m1"]


def test_a_failed_manager_host_stops_the_agents_before_their_agent_starts() -> None:
    seq: list[tuple[str, str]] = []
    lock = threading.Lock()
    fakes = {n: Recorded(n, seq, lock) for n in ADDR}
    fakes["m1"].on(r"^init:manager\.schema$", rc=1, stderr="schema: boom\n")
    results = cluster_run(fakes)
    by = {r.host: r for r in results}
    assert by["m1"].status == "failed"
    for agent in ("a1", "a2"):
        e = by[agent].error
        assert by[agent].status == "failed" and e.op == "program:agent"
        assert "manager host m1 is failed" in e.detail
        assert (agent, "program:agent") not in seq and (agent, "program:docker") in seq


def test_manager_in_the_config_orders_the_hosts_and_gives_roles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.devkit.provision]\nhosts = ["a1", "a2"]\nmanager = "m1"\nmanager_agent = false\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVKIT_STATE_DIR", str(tmp_path / "state"))
    tgts = seam.resolve(seam.Selection()).targets
    assert [(t.name, t.role, t.with_agent) for t in tgts] == [
        ("m1", "manager", False),
        ("a1", "agent", False),
        ("a2", "agent", False),
    ]
    tgts = seam.resolve(seam.Selection(("a3",), manager="m2")).targets
    assert [(t.name, t.role) for t in tgts] == [("m2", "manager"), ("a3", "agent")]


def test_every_role_has_the_module_the_venv_is_checked_by() -> None:
    # a venv whose check module is missing counts as absent and is made again on every run
    check = next(v.check for v in venvs.specs(load_stack("backend.ai")) if v.name == "backend.ai")
    package = check.replace("ai.backend.", "backend.ai-")
    for name, role in (("m1", "manager"), ("a1", "agent")):
        [reqs] = [v.requirements for v in build(name, role).of("venvs") if v.name == "backend.ai"]
        assert any(r.startswith(package + "==") for r in reqs), (role, reqs)
