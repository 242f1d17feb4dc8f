"""A cluster's shared folder (kinds/cluster.py) through the in-memory FakeHost: hosts apart (each its
own filesystem, as separate VMs and isolated sandboxes are) with one base dir, the manager host's
offer (the cluster's key, SFTP only, the marker), each agent host's sshfs mount before its agent,
FUSE missing, one filesystem, and teardown. tests/sandbox/test_cluster.py runs it on real hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit.errors import ConfigError, DevkitError
from devkit.provision.engine import desired, facts, hosts, plan
from devkit.provision.engine import run as engine
from devkit.provision.kinds import cluster
from devkit.provision.kinds.base import Desired
from devkit.provision.kinds.registry import load_stack
from devkit.provision.ssh.command import Command
from devkit.provision.ssh.connection import Result
from tests.fakehost import FakeHost, fresh_raw

ADDR = {"m1": "10.9.0.2", "a1": "10.9.0.3", "a2": "10.9.0.4"}
BASE = "/var/lib/devkit/backend.ai"  # every host's: the default base dir as root
VFROOT = f"{BASE}/data/vfroot"
KEY = cluster.new_key()
PUBLIC = cluster.public_key(KEY)
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJMAQ5muA/JCyP4BZIu4A2tsbBr0YmYFQAvmcEduR1DZ"


def share_raw(name: str, **more: Any) -> dict[str, Any]:
    """The cluster kind's facts of a fresh host with FUSE and sshfs, its sshd on port 22."""
    return {
        "key": "",
        "state": {},
        "fuse": "",
        "sshfs": True,
        "authorized": [],
        "host_keys": [HOST_KEY] if name == "m1" else [],
        "port": "22",
        **more,
    }


def raw(name: str, **more: Any) -> dict[str, Any]:
    r = fresh_raw(base=BASE, address=ADDR[name], filesystem=f"boot-{name} mnt:[1]")
    r["kinds"]["cluster"] = share_raw(name, **more)
    return r


class Host(FakeHost):
    """A FakeHost whose shared folder shows the marker the manager host wrote once sshfs mounted
    it, and that logs (host, op) to a list the hosts of a run share."""

    def __init__(
        self, name: str, seq: list[tuple[str, str]], raw_facts: dict[str, Any], peers: dict
    ) -> None:
        super().__init__(name, raw_facts)
        self.seq, self.peers, self.mounted = seq, peers, False

    def run(self, cmd: Command, op: str, **kw: Any) -> Result:
        text = str(cmd)
        self.seq.append((self.name, op))
        if op != "facts" and "sshfs -F" in text:
            self.mounted = True
        if op != "facts" and text.startswith("timeout") and cluster.MARKER in text:
            self.log.append((op, text))
            marker = self.peers["m1"].files.get(f"{VFROOT}/{cluster.MARKER}")
            return (
                Result(0, marker[0].decode(), "") if self.mounted and marker else Result(1, "", "")
            )
        return super().run(cmd, op, **kw)


def target(name: str) -> hosts.Target:
    return hosts.Target(
        name, name, "backend.ai", "", {}, role="manager" if name == "m1" else "agent"
    )


def run_cluster(fakes: dict[str, FakeHost]) -> list[Any]:
    s = load_stack("backend.ai")._replace(wheels="remote")
    jobs = [engine.Job(s, target(n)) for n in fakes]
    return engine.run(jobs, engine.Options({}, parallel=3), lambda t: fakes[t.name], lambda e: None)


def hosts_of(**raws: dict[str, Any]) -> tuple[dict[str, FakeHost], list[tuple[str, str]]]:
    seq: list[tuple[str, str]] = []
    fakes: dict[str, FakeHost] = {}
    fakes.update({n: Host(n, seq, r, fakes) for n, r in raws.items()})
    for f in fakes.values():  # no image build here: the base image answers at once
        f.on(r"image inspect --format", stdout="sha256:" + "ef" * 32 + "\n")
    return fakes, seq


def put(f: FakeHost, path: str) -> str:
    return f.files[path][0].decode()


def test_the_manager_host_offers_its_folder_and_each_agent_host_mounts_it_before_its_agent() -> (
    None
):
    fakes, seq = hosts_of(m1=raw("m1"), a1=raw("a1"), a2=raw("a2"))
    results = run_cluster(fakes)
    assert [r.status for r in results] == ["changed"] * 3, [r.error for r in results]
    m1 = fakes["m1"]
    # the cluster's key, made here, kept with the manager host's secrets; SFTP only for it
    key = put(m1, f"{BASE}/{cluster.KEY}")
    public = cluster.public_key(key)
    assert public.startswith("ssh-ed25519 ") and m1.files[f"{BASE}/{cluster.KEY}"][1] == 0o600
    [authorize] = [t for op, t in m1.log if op == "share:authorize"]
    assert f'restrict,command="internal-sftp" {public} devkit-share {BASE}' in authorize
    assert "/root/.ssh/authorized_keys" in authorize and "mv -f" in authorize
    assert put(m1, f"{VFROOT}/{cluster.MARKER}") == public + "\n"
    assert key not in m1.everything().replace(put(m1, f"{BASE}/{cluster.KEY}"), "")
    last_of_manager = max(i for i, (h, op) in enumerate(seq) if h == "m1" and op != "facts")
    for name in ("a1", "a2"):
        a = fakes[name]
        assert put(a, f"{BASE}/{cluster.KEY}") == key  # the manager host's, handed over
        assert put(a, f"{BASE}/{cluster.KNOWN_HOSTS}") == f"10.9.0.2 {HOST_KEY}\n"
        conf = put(a, f"{BASE}/{cluster.SSH_CONFIG}")
        assert "HostName 10.9.0.2\n  Port 22\n  User root\n" in conf
        assert (
            f'IdentityFile "{BASE}/{cluster.KEY}"' in conf and "StrictHostKeyChecking yes" in conf
        )
        [mount] = [t for op, t in a.log if op == "share" and "sshfs -F" in t]
        assert f"-o allow_other,reconnect devkit-share:{VFROOT} {VFROOT}" in mount
        state = json.loads(put(a, f"{BASE}/{cluster.STATE}"))
        assert state["how"] == "sshfs" and state["path"] == VFROOT
        # it waited for the manager host's run, and its agent started on the mounted folder
        first = seq.index((name, "share"))
        assert first > last_of_manager
        assert seq.index((name, "program:docker")) < first < seq.index((name, "program:agent"))


def test_an_agent_host_named_before_the_manager_host_still_mounts_its_folder() -> None:
    """What the manager host offers is part of its agent hosts' desired states: it is built first
    whatever the order the hosts come in."""
    fakes, seq = hosts_of(a1=raw("a1"), m1=raw("m1"))
    results = run_cluster(fakes)
    assert [r.status for r in results] == ["changed"] * 2, [r.error for r in results]
    assert ("a1", "share") in seq
    assert put(fakes["a1"], f"{BASE}/{cluster.KEY}") == put(fakes["m1"], f"{BASE}/{cluster.KEY}")


def converged(fake: FakeHost) -> dict[str, Any]:
    """The cluster kind's facts once its ops ran (what the next run's facts say)."""
    key = put(fake, f"{BASE}/{cluster.KEY}")
    public = cluster.public_key(key)
    state = json.loads(put(fake, f"{BASE}/{cluster.STATE}"))
    return share_raw(
        fake.name,
        key=key,
        state=state,
        marker=public,
        mount="fuse.sshfs devkit-share:" + VFROOT if fake.name != "m1" else "",
        is_dir=True,
        authorized=[cluster.authorized_line(public, BASE)] if fake.name == "m1" else [],
    )


def desired_of(name: str, r: dict[str, Any], share: Any) -> Desired:
    s = load_stack("backend.ai")._replace(wheels="remote")
    f = facts.parse(json.dumps(r))
    return desired.build(s, target(name), {}, f, manager_address=ADDR["m1"], share=share)


def test_a_second_look_plans_nothing_for_the_share() -> None:
    fakes, _ = hosts_of(m1=raw("m1"), a1=raw("a1"))
    run_cluster(fakes)
    # the manager host keeps its key: a second run builds the same desired state from it
    again = raw("m1", **converged(fakes["m1"]))
    m2 = desired_of("m1", again, cluster.Offer(True))
    assert m2.of("cluster").key == put(fakes["m1"], f"{BASE}/{cluster.KEY}")
    assert not [op for op in plan.plan(m2, facts.parse(json.dumps(again))) if op.kind == "cluster"]
    src = cluster.source(m2, facts.parse(json.dumps(again)))
    a = desired_of("a1", raw("a1"), src)
    a_again = raw("a1", **converged(fakes["a1"]))
    ops = plan.plan(a, facts.parse(json.dumps(a_again)))
    assert not [op for op in ops if op.kind == "cluster"], ops
    # the mount gone (a reboot, the manager host away): mounted again, and the agent restarted
    a_again["kinds"]["cluster"]["marker"] = None
    ops = [(op.id, op.action) for op in plan.plan(a, facts.parse(json.dumps(a_again)))]
    assert ("share", "mount") in ops


def test_an_agent_host_without_fuse_gets_an_empty_folder_and_says_what_does_not_work() -> None:
    fakes, _ = hosts_of(m1=raw("m1"), a1=raw("a1", fuse="no /dev/fuse", sshfs=False))
    results = run_cluster(fakes)
    assert [r.status for r in results] == ["changed"] * 2, [r.error for r in results]
    a1 = fakes["a1"]
    assert "sshfs" not in a1.everything()  # neither installed nor run
    [made] = [t for op, t in a1.log if op == "share" and "mkdir -p" in t]
    assert VFROOT in made
    state = json.loads(put(a1, f"{BASE}/{cluster.STATE}"))
    assert state["how"] == "local" and state["reason"] == "no /dev/fuse"
    [note] = cluster.notes(facts.parse(json.dumps(raw("a1", state=state, fuse="no /dev/fuse"))))
    assert note.startswith("vfolder mounts do not work on this host: ") and "no /dev/fuse" in note
    assert "\n" not in note
    assert any("vfolder mounts do not work" in r.notes for r in results if r.host == "a1")
    # nothing better to do until it has FUSE: a second run leaves it
    d = desired_of("a1", raw("a1"), cluster.Source(VFROOT, "root", ADDR["m1"], 22, (), KEY, "x"))
    again = raw("a1", state=state, fuse="no /dev/fuse", is_dir=True)
    assert cluster.steps(d, facts.parse(json.dumps(again)), "agent", "prestart") == []
    again["kinds"]["cluster"]["fuse"] = ""
    assert cluster.steps(d, facts.parse(json.dumps(again)), "agent", "prestart")


def test_hosts_on_one_filesystem_share_nothing_and_leave_authorized_keys_alone() -> None:
    one = {n: raw(n) for n in ("m1", "a1")}
    for r in one.values():
        r["host"]["filesystem"] = "boot-1 mnt:[1]"
    fakes, _ = hosts_of(**one)
    results = run_cluster(fakes)
    assert [r.status for r in results] == ["changed"] * 2, [r.error for r in results]
    for f in fakes.values():
        assert not [op for op, _ in f.log if op.startswith("share")], f.ops()
        assert "authorized_keys" not in f.everything()


def test_a_folder_outside_the_agent_hosts_base_dir_and_devkits_stops_the_run() -> None:
    src = cluster.Source("/srv/m1/data/vfroot", "root", ADDR["m1"], 22, (), KEY, "x")
    r = raw("a1")
    r["host"]["base"] = "/srv/a1"
    with pytest.raises(DevkitError, match=r"a1: the manager host's shared folder /srv/m1/data/vf"):
        desired_of("a1", r, src)
    # under devkit's own folder (a sandbox's default base dir names the host): made there
    src = src._replace(path="/var/lib/devkit/m1/backend.ai/data/vfroot")
    assert desired_of("a1", r, src).of("cluster").path == src.path


def test_teardown_unmounts_outside_the_base_dir_and_purge_removes_what_it_made() -> None:
    path = "/var/lib/devkit/m1/backend.ai/data/vfroot"
    state = {"path": path, "how": "sshfs", "made": "/var/lib/devkit/m1", "what": "vfolder mounts"}
    f = facts.parse(json.dumps(raw("a1", state=state, mount="fuse.sshfs devkit-share:" + path)))
    kept = cluster.undo(f, "/var/lib/devkit/a1/backend.ai", False)
    assert [w for _, w in kept] == [f"unmounted {path}"]
    assert f"umount -- {path}" in str(kept[0][0])
    purged = cluster.undo(f, "/var/lib/devkit/a1/backend.ai", True)
    assert [w for _, w in purged][
        1
    ] == "removed the empty folders it made for it, up to /var/lib/devkit/m1"
    assert "rmdir" in str(purged[1][0]) and "/var/lib/devkit/m1" in str(purged[1][0])
    # the manager host's line goes with --purge, found by its key
    line = cluster.authorized_line(PUBLIC, BASE)
    m = facts.parse(
        json.dumps(raw("m1", key=KEY, state={"path": VFROOT, "how": "offered"}, authorized=[line]))
    )
    assert cluster.undo(m, BASE, False) == []
    [(cmd, what)] = cluster.undo(m, BASE, True)
    assert f"grep -vF -- {PUBLIC.split()[1]} /root/.ssh/authorized_keys" in str(cmd)
    assert what == "removed the cluster's key from /root/.ssh/authorized_keys"


def test_an_agent_host_that_sees_the_folder_already_mounts_nothing() -> None:
    """The manager host's folder mounted there by its owner (an NFS export): the marker is there
    when the agent host looks, so no key goes to it and nothing is mounted."""
    fakes, _ = hosts_of(m1=raw("m1"), a1=raw("a1"))
    fakes["a1"].mounted = True  # type: ignore[attr-defined]
    results = run_cluster(fakes)
    assert [r.status for r in results] == ["changed"] * 2, [r.error for r in results]
    a1 = fakes["a1"]
    assert "sshfs" not in a1.everything() and f"{BASE}/{cluster.KEY}" not in a1.files
    state = json.loads(put(a1, f"{BASE}/{cluster.STATE}"))
    assert state["how"] == "there", state
    marker = put(fakes["m1"], f"{VFROOT}/{cluster.MARKER}").strip()
    [note] = cluster.notes(facts.parse(json.dumps(raw("a1", state=state, marker=marker))))
    assert (
        note
        == f"vfolder mounts: {VFROOT} is the manager host's folder, mounted there by you (NFS, ...)"
    )


def test_a_share_before_a_service_the_stack_has_not_is_refused(tmp_path: Path) -> None:
    (tmp_path / "stack.toml").write_text(
        '[stack]\nname = "two"\n[services.app.program]\ncommand = "sleep 1000"\n'
        '[cluster.share]\npath = "/srv/x"\nbefore = "agnet"\n'
    )
    with pytest.raises(ConfigError) as e:
        load_stack(str(tmp_path))
    assert "cluster.share.before" in str(e.value) and "unknown service 'agnet'" in str(e.value)
