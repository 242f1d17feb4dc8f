"""The edit loop's kinds through the engine and the in-memory FakeHost: its files on the host, the
watcher as a program (on with `watch`), and VS Code's settings in the checkout (written where
devkit may, kept where the contributor has their own). tests/editloop runs them on real hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devkit.provision.engine import desired, hosts
from devkit.provision.engine import run as engine
from devkit.provision.kinds import dirs, vscode
from devkit.provision.kinds import edit as edit_kind
from devkit.provision.kinds.base import Desired
from devkit.provision.kinds.registry import load_stack
from devkit.provision.ssh import ship
from tests.fakehost import FakeHost, connector, fresh_raw, parsed
from tests.unit.test_engine import converged_raw

STACK = str(Path(__file__).parents[1] / "editloop" / "stack")
BASE = "/srv/dk"
SET = {"source": {"remote": "/srv/project.git", "checkout": "/home/dev/project"}}


def run(vm: FakeHost, overrides: dict | None = None, dry_run: bool = False) -> Any:
    job = engine.Job(
        load_stack(STACK)._replace(wheels="remote"), hosts.Target("vm", "vm", STACK, BASE, {})
    )
    [r] = engine.run(
        [job], engine.Options(overrides or SET, dry_run), connector({"vm": vm}), lambda e: None
    )
    return r


def built(overrides: dict | None = None) -> Desired:
    s = load_stack(STACK)._replace(wheels="remote")
    return desired.build(
        s, hosts.Target("vm", "vm", STACK, BASE, {}), overrides or SET, parsed(fresh_raw(base=BASE))
    )


def look(vm: FakeHost, checkout: bool = True, sha: str = "", ignored: bool = True) -> FakeHost:
    """What the host says about the checkout's settings file (the vscode kind's second look)."""
    got = vm.raw_facts["kinds"]["vscode"]
    vm.raw_facts["kinds"]["vscode"] = {
        **got,
        "checkout": checkout,
        "sha256": sha,
        "ignored": ignored,
    }
    return vm


def test_a_fresh_host_gets_the_rules_the_host_side_and_settings_after_the_services() -> None:
    vm = look(FakeHost("vm", fresh_raw(base=BASE)), checkout=False)
    vm.on(r"^vscode$", stdout="wrote abc\n")
    r = run(vm)
    assert r.status == "changed", r.error
    ids = [op.id for op in r.ops]
    assert {"file:edit.json", "file:devkit-edit.py"} <= set(ids)
    assert ids.index("program:beta") < ids.index("vscode")  # the checkout exists by then
    assert "program:devkit-watch" not in ids  # watch is off
    rules = json.loads(vm.files[f"{BASE}/supervisor/edit.json"][0])
    assert rules["checkout"] == "/home/dev/project" and rules["order"] == ["alpha", "beta"]
    assert rules["services"]["beta"] == ["src/beta/**", "src/common/**"]
    assert rules["python"] == "/home/dev/project/dist/venv/bin/python"
    script = vm.files[f"{BASE}/supervisor/devkit-edit.py"][0].decode()
    assert script == ship.edit_script() and "The edit loop ON THE HOST" in script
    record = json.loads(vm.files[f"{BASE}/{vscode.RECORD}"][0])
    assert record == {"written": "abc", "told": ""}


def test_watch_on_adds_the_watcher_program_started_after_the_services() -> None:
    d = built({**SET, "source": {**SET["source"], "watch": True}})
    names = [p.name for p in d.of("programs").programs]
    assert names == ["alpha", "beta", edit_kind.WATCHER]
    conf = next(f for f in d.of("files") if f.id == f"program:{edit_kind.WATCHER}").content
    assert 'exec "$p" -I -S "$1" watch "$2"\' /home/dev/project/dist/venv/bin/python' in conf
    assert f"{BASE}/supervisor/devkit-edit.py {BASE}/supervisor/edit.json" in conf
    # the watcher restarts when its rules change: they are part of its hash
    other = built({**SET, "source": {**SET["source"], "watch": True, "checkout": "/x"}})
    h = {p.name: p.hash for p in d.of("programs").programs}
    h2 = {p.name: p.hash for p in other.of("programs").programs}
    assert h[edit_kind.WATCHER] != h2[edit_kind.WATCHER]


def _converged(d: Desired, **vs: Any) -> FakeHost:
    raw = converged_raw(d)
    raw["kinds"]["dirs"]["marker"] = dirs.marker(d)  # a stack from a folder: its path too
    raw["kinds"]["vscode"] = vs.pop("record", {})
    return look(FakeHost("vm", raw), **vs)


def test_a_converged_host_changes_nothing_also_with_its_settings_in_place() -> None:
    d = built()
    want = vscode.digest(d.of("vscode").content)
    vm = _converged(d, record={"written": want}, sha=want)
    r = run(vm)
    assert (r.status, r.ops) == ("unchanged", [])


def test_the_contributors_own_settings_are_kept_and_devkit_says_once_what_it_would_set() -> None:
    d = built()
    vm = _converged(d, record={"written": "", "told": ""}, sha="c0ffee")
    r = run(vm)
    [op] = r.ops
    assert (op.id, op.action) == ("vscode", "keep")
    assert op.detail.startswith("the contributor's /home/dev/project/.vscode/settings.json is kept")
    assert (
        '"python.defaultInterpreterPath" = "/home/dev/project/dist/venv/bin/python"'
        not in op.detail
    )
    assert 'python.defaultInterpreterPath = "/home/dev/project/dist/venv/bin/python"' in op.detail
    assert not any("settings.json" in p for p in vm.files)  # nothing written into the checkout
    assert json.loads(vm.files[f"{BASE}/{vscode.RECORD}"][0])["told"] == "c0ffee"
    again = _converged(d, record={"written": "", "told": "c0ffee"}, sha="c0ffee")
    assert run(again).ops == []


def test_a_path_the_repository_does_not_ignore_is_left_to_the_contributor() -> None:
    d = built()
    vm = _converged(d, record={}, sha="", ignored=False)
    [op] = run(vm).ops
    assert op.action == "keep" and "not ignored by the repository" in op.detail
    assert run(_converged(d, record={"told": "absent"}, sha="", ignored=False)).ops == []


def test_devkit_updates_only_what_it_wrote_itself() -> None:
    d = built()
    vm = _converged(d, record={"written": "old"}, sha="old")
    vm.on(r"^vscode$", stdout="wrote new\n")
    [op] = run(vm).ops
    assert op.action == "update"
    write = next(t for o, t in vm.log if o == "vscode" and "os.link" in t)
    assert " old " in write  # the host writes only over the file devkit wrote (its hash)


def test_a_dry_run_shows_the_settings_and_writes_nothing() -> None:
    vm = look(FakeHost("vm", fresh_raw(base=BASE)), checkout=False)
    r = run(vm, dry_run=True)
    op = next(o for o in r.ops if o.id == "vscode")
    assert "python.analysis.extraPaths" in op.detail
    assert vm.files == {}


def test_root_lets_an_old_listener_hand_its_queued_connections_over_once() -> None:
    """With services that overlap, root sets net.ipv4.tcp_migrate_req where it is 0 (it is per
    network namespace); a host where it is set, or a login that is not root, gets no op."""
    d = built()
    assert d.of(edit_kind.NAME).rules["overlap"] == {"alpha": 8301, "beta": 8302}
    want = vscode.digest(d.of("vscode").content)
    vm = _converged(d, record={"written": want}, sha=want)
    vm.raw_facts["kinds"]["edit"] = {"migrate": "0"}
    vm.raw_facts["host"]["uid"] = 0
    r = run(vm)
    assert [(op.id, op.action) for op in r.ops] == [("sysctl", "set")]
    assert r.ops[0].detail.startswith("net.ipv4.tcp_migrate_req = 1")
    (cmd,) = [text for op, text in vm.log if op == "sysctl"]
    assert cmd == "echo 1 > /proc/sys/net/ipv4/tcp_migrate_req"
    for migrate, uid in (("1", 0), ("0", 1000), ("", 0)):
        vm = _converged(d, record={"written": want}, sha=want)
        vm.raw_facts["kinds"]["edit"] = {"migrate": migrate}
        vm.raw_facts["host"]["uid"] = uid
        assert run(vm).ops == [], (migrate, uid)


def test_the_converged_checkouts_settings_are_looked_at_in_the_first_look() -> None:
    """The settings file of the checkout the rules last named comes with the first look: no
    second look when the checkout stayed where it was, one when it moved."""
    d = built()
    want = vscode.digest(d.of("vscode").content)
    vm = _converged(d, record={"written": want}, sha=want)
    vm.raw_facts["kinds"]["vscode"]["looked"] = "/home/dev/project"
    r = run(vm)
    assert (r.status, r.ops) == ("unchanged", []) and vm.facts_calls == 1
    vm = _converged(d, record={"written": want}, sha=want)
    vm.raw_facts["kinds"]["vscode"]["looked"] = "/somewhere/else"
    run(vm)
    assert vm.facts_calls == 2
