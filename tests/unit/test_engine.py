"""The provisioning engine end to end (gather -> desired -> plan -> apply -> report) through the
in-memory FakeHost: no sshd, no root. tests/ssh and tests/e2e run the same paths on real hosts."""

from __future__ import annotations

import _thread
import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from devkit.errors import DevkitError
from devkit.provision.engine import desired, hosts, report
from devkit.provision.engine import run as engine
from devkit.provision.engine.events import Event
from devkit.provision.kinds.base import Desired
from devkit.provision.kinds.registry import load_stack
from devkit.provision.ssh.command import MASK
from devkit.provision.ssh.connection import CommandTimedOut, ConnectionLost
from devkit.provision.stack import spec as stk
from tests.fakehost import FakeHost, connector, fresh_raw, host_raw, parsed

BASE = "/srv/b a'se\"/dk"  # a space and both quotes: every path must be quoted


def target(name: str = "vm", stack: str = "halfstack") -> hosts.Target:
    return hosts.Target(name, name, stack, BASE, {})


def converged_raw(d: Desired, **host: Any) -> dict[str, Any]:
    """What the facts script prints on a host that d's stack has been applied to."""
    progs = d.of("programs").programs
    return {
        "host": host_raw(base=d.layout.base, **host),
        "kinds": {
            "packages": {"installed": dict.fromkeys(d.of("packages"), True), "sudo": None},
            "dirs": {
                "stats": {
                    x.path: {"mode": f"{x.mode:04o}", "owner": x.owner} for x in d.of("dirs")
                },
                "marker": d.stack + "\n",
                "ancestors": {},
                "base": "devkit",
                "origin": "created",
            },
            "secrets": dict(d.secrets),
            "venvs": {v.name: v.spec for v in d.of("venvs")},
            "files": {
                f.dest: {
                    "mode": f"{f.mode:04o}",
                    "owner": f.owner,
                    "sha256": hashlib.sha256(f.content.encode()).hexdigest(),
                }
                for f in d.of("files")
            },
            "inits": {i.id: i.hash for i in d.of("inits")},
            "programs": {
                "running": True,
                "pid": 99,
                "programs": {
                    p.name: {"state": "RUNNING", "pid": 100 + n, "uptime": 60, "spawnerr": ""}
                    for n, p in enumerate(progs)
                },
                "files": [f"{p.name}.conf" for p in progs],
                "applied": {p.name: p.hash for p in progs},
                "ports": [[x.service, x.port] for x in d.of("programs").ports],
                "checks": {p.name: p.health for p in progs},
                "health": {},
            },
        },
    }


def load(stack: str) -> stk.Stack:
    """The built-in stack, its venvs installed by the host's own pip (no wheels fetched here)."""
    return load_stack(stack)._replace(wheels="remote")


def desired_for(stack: str = "halfstack", overrides: dict | None = None) -> Desired:
    raw = fresh_raw(base=BASE)
    return desired.build(load(stack), target(stack=stack), overrides or {}, parsed(raw))


def provision(
    fakes: dict[str, FakeHost], stack: str = "halfstack", **opts: Any
) -> tuple[list, list[Event]]:
    events: list[Event] = []
    jobs = [engine.Job(load(stack), target(n, stack)) for n in fakes]
    new_secret = opts.pop("new_secret", None)
    o = engine.Options(opts.pop("overrides", {}), **opts)
    results = engine.run(jobs, o, connector(fakes), events.append, new_secret)
    return results, events


def test_fresh_host_applies_every_op_in_plan_order() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE))
    [r], events = provision({"vm": vm})
    assert r.status == "changed" and r.error is None
    ids = [op.id for op in r.ops]
    assert ids[:3] == ["packages", "dirs", "secret:postgres_password"]
    assert (
        ids.index("supervisord") < ids.index("init:postgres.initdb") < ids.index("program:postgres")
    )
    assert ids[-1] == "program:etcd"
    # the events are typed: an op event and a changed event per op, in order
    done = [e.op_id for e in events if e.what == "changed"]
    assert done == ids
    assert [e.what for e in events[:3]] == ["connecting", "lock", "facts"]
    # every op reached the host, in order
    # the lock first, then the interpreters are checked before anything changes
    assert vm.ops()[:4] == ["lock", "python", "packages", "dirs"]
    assert vm.closed


def test_fresh_host_quotes_paths_and_keeps_the_secret_off_command_lines() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE))
    [r], _ = provision({"vm": vm}, new_secret=lambda n: "s3cr3t" + "x" * n)
    assert r.status == "changed"
    secret_path = f"{BASE}/secrets/postgres_password"
    data, mode, _ = vm.files[secret_path]
    assert mode == 0o600 and data.decode().startswith("s3cr3t")
    assert all("s3cr3t" not in text for _, text in vm.log)  # written by SFTP, never on a line
    assert "s3cr3t" not in json.dumps([op._asdict() for op in r.ops])
    dirs_cmd = next(text for op, text in vm.log if op == "dirs")
    assert "'/srv/b a'\"'\"'se\"/dk/etc'" in dirs_cmd  # shell-quoted, quote inside quotes


def test_converged_host_is_unchanged_and_runs_only_its_rechecks() -> None:
    d = desired_for()
    vm = FakeHost("vm", converged_raw(d)).on(r"^recheck$", stdout="ok postgres.database\n")
    [r], events = provision({"vm": vm})
    assert (r.status, r.ops) == ("unchanged", [])
    # take the lock, verify the rechecked steps (all in one command), record that command for
    # the next run's first look, release
    assert [op for op, _ in vm.log] == ["lock", "recheck", "recheck", "lock"]
    assert vm.facts_calls == 1
    (recheck,) = [t for op, t in vm.log if op == "recheck" and not t.startswith("put ")]
    assert "psql" in recheck and "select 1" in recheck  # the database step's verify
    assert not any(e.what in ("op", "changed") for e in events)
    script, _, _ = vm.files[f"{BASE}/state/recheck.sh"]
    # the next run: the facts script ran the recorded rechecks with its look (one round trip)
    raw = converged_raw(d)
    sha = hashlib.sha256(script).hexdigest()
    raw["kinds"]["inits"]["@recheck"] = {"sha": sha, "bad": [], "rc": 0}
    vm = FakeHost("vm", raw)
    [r], _ = provision({"vm": vm})
    assert (r.status, r.ops) == ("unchanged", [])
    assert [op for op, _ in vm.log] == ["lock", "lock"] and vm.facts_calls == 1
    assert "<facts script>" in vm.log[0][1]  # the look, taken with the lock: one command
    # a recorded recheck that failed there: the step runs again, as when it failed here
    raw["kinds"]["inits"]["@recheck"] = {"sha": sha, "bad": ["postgres.database"], "rc": 0}
    vm = FakeHost("vm", raw)
    [r], _ = provision({"vm": vm})
    assert "init:postgres.database" in [op.id for op in r.ops]


def test_a_rechecked_step_that_fails_its_verify_runs_again() -> None:
    d = desired_for()
    vm = FakeHost("vm", converged_raw(d)).on(r"^recheck$", stdout="bad postgres.database\n")
    [r], _ = provision({"vm": vm})
    assert [(o.id, o.action) for o in r.ops] == [("init:postgres.database", "run")], r.ops


def test_a_changed_port_rewrites_one_file_and_restarts_one_program() -> None:
    d = desired_for()
    vm = FakeHost("vm", converged_raw(d))
    [r], _ = provision({"vm": vm}, overrides={"redis": {"port": 8112}})
    assert [(o.id, o.action) for o in r.ops] == [
        ("file:redis.conf", "update"),
        ("file:services.json", "update"),
        ("program:redis", "restart"),
    ]
    conf = vm.files[f"{BASE}/etc/redis.conf"][0].decode()
    assert "port 8112" in conf
    applied = json.loads(vm.files[f"{BASE}/state/programs.json"][0])
    assert set(applied) == {"postgres", "redis", "etcd"}


def test_a_failing_init_stops_that_host_with_the_command_and_its_stderr() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE)).on(
        r"^init:postgres\.initdb$", rc=1, stderr="initdb: error: directory exists\n"
    )
    other = FakeHost("other", fresh_raw(base=BASE))
    results, _ = provision({"vm": vm, "other": other})
    r, ok = results
    assert r.status == "failed" and ok.status == "changed"  # one host's failure stays its own
    e = r.error
    assert (e.op, e.rc) == ("init:postgres.initdb", 1)
    assert "initdb: error: directory exists" in e.stderr_tail
    assert "/initdb -D" in e.cmd  # the step's own text, not the wrapper around it
    assert r.ops[-1].status == "failed" and r.ops[-1].id == "init:postgres.initdb"
    assert "program:postgres" not in [op for op, _ in vm.log]
    # what did start is recorded, so the next run restarts only what it must
    assert f"{BASE}/state/programs.json" in vm.files


def test_a_timeout_and_a_lost_connection_are_told_apart() -> None:
    slow = FakeHost("slow", fresh_raw(base=BASE)).on(
        r"^init:postgres\.database$", error=CommandTimedOut
    )
    gone = FakeHost("gone", fresh_raw(base=BASE)).on(r"^program:redis$", error=ConnectionLost)
    (a, b), _ = provision({"slow": slow, "gone": gone})
    assert a.status == "failed" and "timed out" in a.error.detail
    assert a.error.op == "init:postgres.database"
    assert b.status == "failed" and "connection lost" in b.error.detail
    assert b.error.op == "program:redis"


def test_a_host_that_cannot_be_reached_does_not_stop_the_others() -> None:
    ok = FakeHost("ok", fresh_raw(base=BASE))

    def connect(t: hosts.Target) -> FakeHost:
        if t.name == "down":
            raise ConnectionLost("down", "connect", "cannot reach root@down:22: timed out")
        return ok

    jobs = [engine.Job(load("halfstack"), target(n)) for n in ("down", "ok")]
    down, up = engine.run(jobs, engine.Options({}), connect, lambda e: None)
    assert (down.status, down.error.op) == ("failed", "connect")
    assert up.status == "changed"


def test_a_bad_value_stops_every_host_before_anything_changes() -> None:
    a, b = FakeHost("a", fresh_raw(base=BASE)), FakeHost("b", fresh_raw(base=BASE))
    with pytest.raises(DevkitError, match="is not a plain identifier"):
        provision({"a": a, "b": b}, overrides={"postgres": {"database": "x'; drop"}})
    # the lock (taken and released, outside the base dir) is all that ran
    assert [op for op, _ in a.log + b.log] == ["lock"] * 4 and a.closed and b.closed


def test_dry_run_plans_with_diffs_and_changes_nothing() -> None:
    d = desired_for()
    raw = converged_raw(d)
    vm = FakeHost("vm", raw)
    old = next(f for f in d.of("files") if f.id == "etcd.yml")
    vm.files[f"{BASE}/{old.dest}"] = (old.content.encode(), 0o644, "")
    [r], _ = provision({"vm": vm}, overrides={"etcd": {"port": 8131}}, dry_run=True)
    assert r.status == "planned"
    diff = next(op.diff for op in r.ops if op.id == "file:etcd.yml")
    assert "-" in diff and "+" in diff and "8131" in diff
    # what ran is a look: the rechecked steps' verify commands, read-only
    assert [op for op, _ in vm.log] == ["recheck"] and vm.files[f"{BASE}/{old.dest}"][0] == (
        old.content.encode()
    )


def test_a_port_in_use_fails_before_anything_starts_and_a_dry_run_shows_it() -> None:
    raw = fresh_raw(base=BASE, listening=[8111])
    [r], _ = provision({"vm": FakeHost("vm", raw)})
    assert r.status == "failed" and r.error.op == "ports"
    assert "port 8111 (redis redis)" in r.error.detail
    [p], _ = provision({"vm": FakeHost("vm", raw)}, dry_run=True)
    assert p.ops[0].id == "ports" and "8111" in p.ops[0].detail


def test_secrets_in_a_failing_commands_output_are_masked() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE)).on(
        r"^init:postgres\.database$",
        rc=2,
        stderr="psql: password hunter2yyyyyyyyyyyyyyyy rejected\n",
    )
    [r], events = provision({"vm": vm}, new_secret=lambda n: "hunter2" + "y" * n)
    assert "hunter2" not in r.error.stderr_tail and MASK in r.error.stderr_tail
    out = io.StringIO()
    report.text([r], False, out)
    report.as_json([r], out)
    assert "hunter2" not in out.getvalue() + "".join(e.text for e in events)


def test_ctrl_c_stops_the_commands_in_flight_and_reports_each_host() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE)).on(r"^init:postgres\.initdb$", block=True)

    def interrupt_when_blocked() -> None:
        vm.blocked.wait(10)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_blocked, daemon=True).start()
    [r], _ = provision({"vm": vm})
    assert vm.interrupted.is_set()
    assert r.status == "interrupted"
    assert [op.status for op in r.ops][-1] == "failed"
    out = io.StringIO()
    report.text([r], False, out)
    assert "INTERRUPTED after" in out.getvalue()


def test_progress_lines_name_host_op_and_outcome() -> None:
    out = io.StringIO()
    emit = report.plain(out)
    emit(Event("vm", "op", "dirs", "create"))
    emit(Event("vm", "changed", "dirs", "create"))
    emit(Event("vm", "failed", text="init:x: exit code 1"))
    assert out.getvalue() == "vm: dirs create: changed\nvm: failed: init:x: exit code 1\n"


class Looks(FakeHost):
    """A host whose facts are given look by look: the first gather, then each status look."""

    def __init__(self, looks: list[dict[str, Any]]) -> None:
        super().__init__("vm", looks[0])
        self.looks = iter(looks)

    def facts_answer(self, text: str) -> str:
        self.raw_facts = next(self.looks)
        return super().facts_answer(text)


def failing(d: Desired, service: str, output: str) -> dict[str, Any]:
    raw = converged_raw(d)
    raw["kinds"]["programs"]["health"] = {service: {"ok": False, "output": output}}
    return raw


def test_a_run_that_changed_something_ends_with_the_status_table() -> None:
    [r], events = provision({"vm": FakeHost("vm", fresh_raw(base=BASE))})
    assert r.status == "changed" and r.error is None
    assert {x.service: (x.state, x.healthy) for x in r.services} == {
        "postgres": ("RUNNING", True),
        "redis": ("RUNNING", True),
        "etcd": ("RUNNING", True),
    }
    assert Event("vm", "health") in events
    out = io.StringIO()
    report.after([r], out)
    assert "SERVICE" in out.getvalue() and "redis" in out.getvalue()


def test_a_service_not_healthy_at_the_end_fails_the_run_with_the_table(monkeypatch) -> None:
    monkeypatch.setattr(engine, "HEALTH_SETTLE", 0.5)
    d = desired_for()
    sick = failing(d, "redis", "connection refused")
    vm = Looks([fresh_raw(base=BASE), sick, sick])
    [r], _ = provision({"vm": vm})
    assert r.status == "failed" and vm.facts_calls == 3  # looked at again before failing
    e = r.error
    assert (e.op, e.detail) == ("health", "not healthy at the end of the run: redis")
    assert "redis: RUNNING connection refused" in e.stderr_tail
    assert "devkit logs vm redis" in e.hint
    out = io.StringIO()
    report.text([r], False, out)
    report.after([r], out)
    text = out.getvalue()
    assert "FAILED" in text and "FAILING (connection refused)" in text
    out = io.StringIO()
    report.as_json([r], out)
    data = json.loads(out.getvalue())
    assert data["ok"] is False
    assert {x["service"]: x["healthy"] for x in data["hosts"][0]["services"]}["redis"] is False


def test_a_service_supervisord_gave_up_on_fails_without_waiting(monkeypatch) -> None:
    monkeypatch.setattr(engine, "HEALTH_SETTLE", 60.0)
    d = desired_for()
    dead = failing(d, "redis", "connection refused")
    dead["kinds"]["programs"]["programs"]["redis"]["state"] = "FATAL"
    vm = Looks([fresh_raw(base=BASE), dead])
    [r], _ = provision({"vm": vm})
    assert r.status == "failed" and vm.facts_calls == 2, r  # one look, no second
    assert "redis: FATAL connection refused" in r.error.stderr_tail


def test_a_service_that_settles_within_a_few_seconds_passes(monkeypatch) -> None:
    monkeypatch.setattr(engine, "HEALTH_SETTLE", 0.5)
    d = desired_for()
    well = converged_raw(d)
    well["kinds"]["programs"]["health"] = {"redis": {"ok": True, "output": ""}}
    vm = Looks([fresh_raw(base=BASE), failing(d, "redis", "loading"), well])
    [r], _ = provision({"vm": vm})
    assert r.status == "changed" and r.error is None, r.error


def test_the_template_dir_stacks_load_and_plan(tmp_path: Path) -> None:
    for name in ("halfstack", "backend.ai"):
        d = desired_for(name)
        assert d.of("programs").programs


def test_a_service_gone_from_the_stack_is_removed_and_a_new_supervisord_conf_reloads() -> None:
    d = desired_for()
    raw = converged_raw(d)
    raw["kinds"]["programs"]["files"].append("old.conf")
    raw["kinds"]["programs"]["programs"]["old"] = {"state": "RUNNING", "pid": 7, "uptime": 1}
    [r], _ = provision({"vm": FakeHost("vm", raw)})
    assert [(o.id, o.action) for o in r.ops] == [("program:old", "remove")]
    raw = converged_raw(d)
    raw["kinds"]["files"]["supervisor/supervisord.conf"]["sha256"] = "0" * 64
    vm = FakeHost("vm", raw)
    [r], _ = provision({"vm": vm})
    ids = [(o.id, o.action) for o in r.ops]
    assert ids[:2] == [("file:supervisord.conf", "update"), ("supervisord", "reload")]
    assert [a for i, a in ids if i.startswith("program:")] == ["start", "start", "start"]
    reload_cmd = next(t for op, t in vm.log if op == "supervisord")
    assert "supervisorctl" in reload_cmd and "shutdown" in reload_cmd


def test_a_program_that_crashes_on_start_names_its_log() -> None:
    d = desired_for()
    raw = converged_raw(d)
    raw["kinds"]["programs"]["applied"]["redis"] = "stale"
    vm = FakeHost("vm", raw).on(
        r"^program:redis$",
        rc=1,
        stderr="redis crashed on start; the last lines of its log:\nbind: in use\n",
    )
    [r], _ = provision({"vm": vm})
    e = r.error
    assert (e.op, e.detail, e.cmd) == (
        "program:redis",
        "redis crashed on start; the last lines of its log",
        "supervisorctl restart redis",
    )
    assert e.stderr_tail == "bind: in use" and "devkit logs vm redis" in e.hint
    # supervisord goes on retrying it with what this run gave it: the record says so, and the
    # next run restarts it even when it finds it STARTING with its config back as it was
    applied = json.loads(vm.files[f"{BASE}/state/programs.json"][0])
    assert applied["redis"] == "" and applied["postgres"] != ""
    raw = converged_raw(d)
    raw["kinds"]["programs"]["applied"]["redis"] = ""
    raw["kinds"]["programs"]["programs"]["redis"]["state"] = "STARTING"
    [r], _ = provision({"vm": FakeHost("vm", raw)})
    assert [(o.id, o.action) for o in r.ops] == [("program:redis", "restart")], r.ops


def test_a_missing_interpreter_stops_before_anything_changes() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE)).on(
        r"^python$", rc=3, stdout="supervisor: /usr/bin/python3 not found\n"
    )
    [r], _ = provision({"vm": vm})
    assert (
        r.error.op == "python" and "venv supervisor: /usr/bin/python3 not found" in r.error.detail
    )
    assert vm.ops() == ["lock", "python", "lock"]  # nothing ran after the check


def test_a_plain_user_without_sudo_gets_one_line_before_any_install() -> None:
    raw = fresh_raw(base=BASE, user="dev", uid=1000)
    raw["kinds"]["packages"] = {"installed": {"redis-server": False}, "sudo": False}
    vm = FakeHost("vm", raw)
    [r], _ = provision({"vm": vm})
    assert "sudo failed: installing" in r.error.detail
    assert r.error.hint.startswith("Allow passwordless sudo")
    assert "packages" not in vm.ops()


def test_root_opens_closed_parents_for_the_services_other_users() -> None:
    raw = fresh_raw(base=BASE)
    raw["kinds"]["dirs"] = {
        "stats": {},
        "marker": None,
        "ancestors": {"/srv": {"mode": "0700", "owner": "root"}},
    }
    vm = FakeHost("vm", raw)
    [r], _ = provision({"vm": vm})
    trav = next(o for o in r.ops if o.id == "traverse")
    assert trav.detail == "o+x on /srv so postgres can reach the base dir"
    assert any(op == "traverse" and "chmod o+x -- /srv" in t for op, t in vm.log)


def test_the_live_display_and_the_dry_run_text() -> None:
    out = io.StringIO()
    with report.Live(["vm"], out) as live:
        live.emit(Event("vm", "connecting"))
        live.emit(Event("vm", "changed", "dirs", "create"))
    assert "vm: dirs create: changed" in out.getvalue()
    d = desired_for()
    [r], _ = provision({"vm": FakeHost("vm", converged_raw(d))}, dry_run=True)
    text = io.StringIO()
    report.text([r], True, text)
    assert "vm: up to date, nothing to do" in text.getvalue()
    [p], _ = provision({"vm": FakeHost("vm", fresh_raw(base=BASE))}, dry_run=True)
    text = io.StringIO()
    report.text([p], True, text)
    assert (
        "op(s) would change something" in text.getvalue()
        and "+++ b/etc/redis.conf" in text.getvalue()
    )


def test_a_run_holds_the_hosts_lock_and_a_second_run_says_who_has_it() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE))
    [r], _ = provision({"vm": vm})
    assert r.status == "changed" and vm.held == 0 and vm.log[-1] == ("lock", "release")
    lock_cmd = vm.log[0][1]
    assert (
        "flock -w 10 -E 75" in lock_cmd and "realpath -m -- '/srv/b a'\"'\"'se\"/dk' |" in lock_cmd
    )
    busy = FakeHost("vm", fresh_raw(base=BASE)).on(
        r"^lock$", rc=75, stdout="devkit (pid 4242) of dev@laptop, since 2026-12-01 10:00:00\n"
    )
    [r], _ = provision({"vm": busy})
    assert r.status == "failed" and r.error.op == "lock"
    assert "another run holds the lock on" in r.error.detail and "pid 4242" in r.error.detail
    assert busy.facts_calls == 0  # nothing was looked at, nothing changed
    dry = FakeHost("vm", fresh_raw(base=BASE))
    provision({"vm": dry}, dry_run=True)
    assert dry.log == []  # a dry run takes no lock: it changes nothing


def test_a_systemd_host_gets_a_unit_that_brings_the_stack_back_at_boot() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE, init="systemd"))
    [r], _ = provision({"vm": vm})
    assert r.ops[-1].id == "boot" and "starts at boot" in r.ops[-1].detail
    (unit_path,) = [p for p in vm.files if p.startswith("/etc/systemd/system/devkit-")]
    unit = vm.files[unit_path][0].decode()
    assert 'ExecStart=/usr/bin/env "/srv/b a\'se\\"/dk/venvs/supervisor/bin/python" -m' in unit
    assert "start-all.sh" in unit and "Type=forking" in unit
    assert any("systemctl enable" in t for op, t in vm.log if op == "boot")
    plain = FakeHost("vm", fresh_raw(base=BASE, init="systemd", user="dev", uid=1000))
    [p], _ = provision({"vm": plain})
    assert "boot" not in [o.id for o in p.ops]  # a plain user's stack is not started at boot
    no_systemd = FakeHost("vm", fresh_raw(base=BASE))
    [n], _ = provision({"vm": no_systemd})
    assert "boot" not in [o.id for o in n.ops]


def test_the_platform_decides_postgres_and_package_names_and_others_are_refused() -> None:
    trixie = fresh_raw(
        base=BASE, os={"id": "debian", "version": "13", "name": "Debian GNU/Linux 13 (trixie)"}
    )
    trixie["host"]["postgres"], trixie["host"]["postgres_candidate"] = [], "17"
    vm = FakeHost("vm", trixie)
    [r], _ = provision({"vm": vm}, dry_run=True)
    assert r.status == "planned"
    conf = vm  # nothing written in a dry run: look at what would be
    d = desired.build(load("halfstack"), target(), {}, parsed(trixie))
    assert "command=/usr/lib/postgresql/17/bin/postgres -D" in next(
        f.content for f in d.of("files") if f.id == "program:postgres"
    )
    jammy = fresh_raw(base=BASE, os={"id": "ubuntu", "version": "22.04"})
    d = desired.build(load("halfstack"), target(), {}, parsed(jammy))
    assert "etcd" in d.of("packages") and "etcd-server" not in d.of("packages")
    old = FakeHost(
        "vm",
        fresh_raw(
            base=BASE,
            os={"id": "debian", "version": "11", "name": "Debian GNU/Linux 11 (bullseye)"},
        ),
    )
    [r], _ = provision({"vm": old})
    assert r.status == "failed" and r.error.op == "platform"
    assert (
        "Debian GNU/Linux 11 (bullseye) is not a platform the halfstack stack runs on"
        in r.error.detail
    )
    assert "Debian 12, Debian 13, Ubuntu 22.04, Ubuntu 24.04" in r.error.hint
    assert old.log == [("lock", old.log[0][1]), ("lock", "release")]  # nothing else ran
    del conf
