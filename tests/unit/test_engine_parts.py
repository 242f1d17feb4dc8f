"""The engine's parts on their own: commands that quote and mask themselves, `ssh -G` parsing, the
facts script run for real on this machine, and the operations on a provisioned stack (FakeHost)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from devkit.errors import DevkitError
from devkit.provision.engine import facts, hosts, operate
from devkit.provision.kinds import registry
from devkit.provision.kinds.base import HostInfo
from devkit.provision.kinds.registry import load_stack
from devkit.provision.ssh import address
from devkit.provision.ssh import client as ssh
from devkit.provision.ssh.command import MASK, Secret, as_user, cat, join, q, sh, write_text
from tests.fakehost import FakeHost, parsed
from tests.unit.test_engine import BASE, converged_raw, desired_for


def test_commands_quote_values_and_mask_secrets() -> None:
    c = sh("echo", q("it's $(id)"), Secret("pw d"), "|", cat("A=", q("b c")))
    assert str(c) == "echo 'it'\"'\"'s $(id)' 'pw d' | A='b c'"
    assert c.shown() == f"echo 'it'\"'\"'s $(id)' {MASK} | A='b c'"
    nested = sh("sh", "-c", q(sh("printf", Secret("x y"))))
    assert subprocess.run(["sh", "-c", str(nested)], capture_output=True, text=True).stdout == "x y"
    assert MASK in nested.shown() and "x y" not in nested.shown()
    assert sh("x").labelled("the step").shown() == "the step"


def test_join_and_as_user_run_in_a_real_shell(tmp_path: Path) -> None:
    target = tmp_path / "a b" / "f"
    target.parent.mkdir()
    cmd = join([write_text(str(target), "one 'two'"), sh("cat", q(str(target)))])
    out = subprocess.run(["sh", "-c", str(cmd)], capture_output=True, text=True)
    assert out.stdout == "one 'two'\n" and not list(target.parent.glob("*.devkit-tmp"))
    me = os.environ.get("USER", "root")
    assert str(as_user(sh("id"), "", me, True)) == "sh -c id"
    assert str(as_user(sh("id"), "postgres", "root", True)).startswith(
        "runuser -u postgres -- sh -c"
    )
    assert str(as_user(sh("id"), "postgres", "dev", False)).startswith("sudo -n -u postgres --")


def test_ssh_g_output_is_read_as_openssh_means_it() -> None:
    text = (
        "user bob\nhostname 10.1.1.1\nport 2222\nidentitiesonly yes\n"
        "identityfile ~/.ssh/k1\nidentityfile ~/.ssh/k2\n"
        "userknownhostsfile /k/known /k/known2\nproxyjump a,dev@b:2200\n"
    )
    o = ssh.parse_ssh_g(text)
    assert (o.hostname, o.user, o.port, o.identities_only) == ("10.1.1.1", "bob", 2222, True)
    assert o.identity_files == ("~/.ssh/k1", "~/.ssh/k2")
    assert o.known_hosts == ("/k/known", "/k/known2")
    assert o.proxy_jump == ("a", "dev@b:2200")  # dialled in this order: a first
    assert ssh.parse_ssh_g("proxyjump none\n").proxy_jump == ()
    # a hop is parsed as any address is (one parser)
    assert address.parse_address("dev@b:2200") == ("dev", "b", 2200)
    assert address.parse_address("[::1]:22") == ("", "::1", 22)
    assert address.parse_address("alias") == ("", "alias", None)


def test_resolve_follows_include_and_top_level_defaults_like_ssh(
    tmp_path: Path, monkeypatch
) -> None:
    key = tmp_path / "key"
    key.write_text("not really a key")
    (tmp_path / "boxes.conf").write_text("Host box\n  HostName 10.9.9.9\n  Port 2200\n")
    cfg = tmp_path / "config"
    cfg.write_text(
        f"Include {tmp_path}/boxes.conf\n\nUser alice\nIdentityFile {key}\n\n"
        "Host other\n  User bob\n"
    )
    monkeypatch.setenv("DEVKIT_SSH_CONFIG", str(cfg))
    o = ssh.resolve("box")
    # the user's top-level defaults still apply to a host from an included file
    assert (o.hostname, o.port, o.user, o.identity_files) == (
        "10.9.9.9",
        2200,
        "alice",
        (str(key),),
    )
    # first value wins, as in ssh: the top-level User comes before `Host other`
    assert ssh.resolve("other").user == "alice"
    assert ssh.resolve("box", "carol", 2201)[1:3] == ("carol", 2201)
    cfg.write_text("Host x\n  Bogus yes\n")
    with pytest.raises(DevkitError, match="ssh cannot read it"):
        ssh.resolve("x")


def test_the_facts_script_runs_on_this_machine_and_parses(tmp_path: Path) -> None:
    """The real script, as the host runs it, against a base dir with some of the stack in it."""
    base = tmp_path / "base"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "redis.conf").write_text("port 1\n")
    (base / "secrets").mkdir(mode=0o700)
    (base / "secrets" / "postgres_password").write_text("pw\n")
    (base / "state" / "init").mkdir(parents=True)
    (base / "state" / "init" / "postgres.initdb.done").write_text("\n")
    (base / ".devkit-stack").write_text("halfstack\n")
    s = load_stack("halfstack")
    cmd = facts.command(facts.request(s, str(base), programs={"health": {"redis": "exit 3"}}))
    out = subprocess.run(["sh", "-c", str(cmd)], capture_output=True, text=True, check=True)
    f = facts.parse(out.stdout)
    assert f.host.base == str(base) and f.host.uid == os.getuid()
    assert f.of("dirs").marker == "halfstack\n"
    assert f.of("dirs").stats["etc"].mode == "0755" and f.of("dirs").stats["data"] is None
    assert f.of("files")["etc/redis.conf"].sha256 == hashlib.sha256(b"port 1\n").hexdigest()
    assert f.of("files")["etc/etcd.yml"] is None
    assert f.of("secrets") == {"postgres_password": "pw"}
    assert f.of("inits") == {"postgres.initdb": ""}
    assert f.of("programs").running is False
    assert f.of("programs").health["redis"].ok is False
    assert set(f.of("packages").installed) == {
        "etcd",  # Ubuntu 22.04's name: asked too, as the platform is not known before the facts
        "postgresql",
        "redis-server",
        "etcd-server",
        "etcd-client",
        "python3-venv",
    }
    # each kind's collector, called here, says what the shipped script said
    req = facts.request(s, str(base), programs={"health": {"redis": "exit 3"}})
    here = {k.NAME: k.parse(k.collect(req["kinds"][k.NAME], str(base))) for k in registry.KINDS}
    assert here == dict(f.kinds)


def test_unreadable_facts_name_the_host_and_the_fix() -> None:
    bad = FakeHost("vm")
    bad.raw_facts = {"not": "facts"}
    with pytest.raises(DevkitError, match="vm: facts: unreadable facts") as info:
        facts.gather(bad, load_stack("halfstack"), "/b")
    assert "python3" in info.value.hint


def _deployment(raw: dict | None = None) -> operate.Deployment:
    d = desired_for()
    vm = FakeHost("vm", raw or converged_raw(d))
    t = hosts.Target("vm", "vm", "halfstack", BASE, {})
    return operate.find(vm, load_stack("halfstack"), t, health=True)


def test_find_refuses_a_host_without_the_stack() -> None:
    from tests.fakehost import fresh_raw

    with pytest.raises(DevkitError, match="no halfstack stack at") as info:
        _deployment(fresh_raw(base=BASE))
    assert "devkit provision vm" in info.value.hint


def test_status_rows_show_a_crashed_service_with_its_log() -> None:
    raw = converged_raw(desired_for())
    raw["kinds"]["programs"]["programs"]["redis"] = {"state": "FATAL", "pid": 0, "uptime": 0}
    raw["kinds"]["programs"]["health"] = {"postgres": {"ok": True, "output": ""}}
    dep = _deployment(raw)
    dep.conn.on(r"tail -n 8", stdout="redis: bind: address in use\n")
    rows = {r.service: r for r in operate.status(dep)}
    assert rows["redis"].state == "FATAL" and "address in use" in rows["redis"].log_tail
    assert rows["postgres"].healthy is True and rows["etcd"].healthy is None
    assert not operate.all_ok(dep, list(rows.values()))


def test_control_starts_in_priority_order_and_names_unknown_services() -> None:
    dep = _deployment()
    ok, _ = operate.control(dep, "restart", None)
    assert ok
    (cmd,) = [t for op, t in dep.conn.log if op == "restart"]
    assert " stop all" in cmd and cmd.endswith(
        "sh '/srv/b a'\"'\"'se\"/dk/supervisor/start-all.sh' ; }"
    )
    script = next(f.content for f in desired_for().of("files") if f.id == "start-all")
    started = re.findall(r" start ([\w-]+)", script)  # each once more if not healthy in time
    assert list(dict.fromkeys(started)) == ["postgres", "redis", "etcd"]
    assert "services.json" in script  # the checks as last provisioned, read when it runs
    with pytest.raises(DevkitError, match="no service 'redsi'"):
        operate.control(dep, "stop", "redsi")
    raw = converged_raw(desired_for())
    raw["kinds"]["programs"]["running"] = False  # a reboot: start brings the whole stack back
    down = _deployment(raw)
    assert operate.control(down, "start", "redis")[0]
    (cmd,) = [t for op, t in down.conn.log if op == "start"]
    assert "supervisor.supervisord -c" in cmd and "start-all.sh" in cmd
    assert "devkit start vm" in operate.down_note(down)
    assert operate.control(down, "stop", None) == (True, "")


def test_teardown_purges_only_a_base_dir_marked_as_devkits() -> None:
    dep = _deployment()
    lines = operate.teardown(dep, purge=True)
    assert lines[-1].endswith(f"removed {BASE} (devkit made it)")
    purge = next(t for op, t in dep.conn.log if op == "purge")
    assert purge.startswith('{ [ "$(head -n 1 --') and "= created ]" in purge
    assert "rm -rf --" in purge


@pytest.mark.parametrize("origin", ["adopted", ""])
def test_teardown_keeps_a_base_dir_devkit_did_not_make(origin: str) -> None:
    """Issue 22, item 4: a folder that was there before devkit took it is never deleted."""
    raw = converged_raw(desired_for())
    raw["kinds"]["dirs"]["origin"] = origin
    dep = _deployment(raw)
    lines = operate.teardown(dep, purge=True)
    assert f"kept {BASE}" in lines[-1] and "does not delete it" in lines[-1]
    assert not any("rm -rf" in t for _, t in dep.conn.log)


def test_logs_stream_the_services_log() -> None:
    dep = _deployment()
    dep.conn.on(r"tail -n 5", stdout="line\n")
    out = io.StringIO()
    assert operate.logs(dep, "redis", 5, False, out) == 0 and out.getvalue() == "line\n"
    with pytest.raises(DevkitError, match="no service"):
        operate.logs(dep, "nope", 5, False, out)


def test_assumed_host_renders_the_stack_without_facts() -> None:
    from devkit.commands.ssh_config import forwarded_ports

    t = hosts.Target("vm", "vm", "backend.ai", "", {})
    assert forwarded_ports(load_stack("backend.ai"), t, "dev") == [
        8101,
        8111,
        8121,
        6021,
        8091,
        8090,
    ]
    assert parsed({"host": HostInfo.assumed("x")._asdict(), "kinds": {}}).host.user == "x"


def test_fake_host_json_roundtrip_is_what_the_script_prints() -> None:
    raw = converged_raw(desired_for())
    assert json.loads(json.dumps(raw)) == raw


def test_the_programs_collector_reads_a_real_supervisord(tmp_path: Path) -> None:
    """supervisord (from PyPI, as on a host) in a temp base dir: the collector sees it RUNNING,
    its program, the recorded checks and hashes, and runs the checks it is asked for."""
    pytest.importorskip("supervisor")
    from devkit.provision.kinds import programs, supervisor
    from devkit.provision.stack.layout import Layout

    base = tmp_path / "b"
    for d in ("run", "logs", "state", "supervisor/programs"):
        (base / d).mkdir(parents=True)
    lay = Layout(str(base))
    (base / "supervisor" / "supervisord.conf").write_text(supervisor.daemon_conf(lay, "t"))
    prog = supervisor.Program("idle", "/bin/sleep 300", {}, "", "", 10, 0, "TERM", 5)
    (base / "supervisor" / "programs" / "idle.conf").write_text(supervisor.program_conf(lay, prog))
    (base / "state" / "programs.json").write_text('{"idle": "abc"}')
    (base / "state" / "services.json").write_text(
        json.dumps({"health": {"idle": "true"}, "ports": [{"service": "idle", "port": 9}]})
    )
    py = __import__("sys").executable
    conf = str(base / "supervisor" / "supervisord.conf")
    subprocess.run([py, "-m", "supervisor.supervisord", "-c", conf], check=True, cwd=base)
    ctl = [py, "-m", "supervisor.supervisorctl", "-c", conf]
    try:
        for _ in range(50):
            if (base / "run" / "supervisor.sock").exists():
                break
            time.sleep(0.1)
        subprocess.run([*ctl, "start", "idle"], check=True, capture_output=True)
        req = {**programs.request(None), "health": "provisioned"}
        pf = programs.parse(programs.collect(req, str(base)))
        assert pf.running and pf.pid > 0
        assert pf.programs["idle"].state == "RUNNING" and pf.programs["idle"].pid > 0
        assert pf.files == ("idle.conf",) and pf.applied == {"idle": "abc"}
        assert pf.ports == (("idle", 9),) and pf.checks == {"idle": "true"}
        assert pf.health["idle"].ok
    finally:
        subprocess.run([*ctl, "shutdown"], capture_output=True, check=False)
    for _ in range(50):
        if not programs.parse(programs.collect(programs.request(None), str(base))).running:
            break
        time.sleep(0.1)
    assert not programs.parse(programs.collect(programs.request(None), str(base))).running


def test_host_info_describes_this_machine(tmp_path: Path) -> None:
    from devkit.provision.onhost import facts as host_facts

    info = HostInfo.parse(host_facts.host_info(str(tmp_path)))
    assert info.uid == os.getuid() and info.base == str(tmp_path)
    assert info.os["id"] and info.machine == os.uname().machine
    assert all(isinstance(p, int) for p in info.listening)


def test_a_pid_file_naming_another_process_is_not_a_running_supervisord(tmp_path: Path) -> None:
    from devkit.provision.kinds import programs

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "supervisord.pid").write_text(f"{os.getpid()}\n")  # alive, not ours
    pf = programs.parse(programs.collect(programs.request(None), str(tmp_path)))
    assert not pf.running and "stale pid file" in pf.error


def test_the_docker_engine_found_at_the_first_provision_is_kept(tmp_path: Path) -> None:
    """`docker.engine = "auto"` must not flip when a host engine appears (or goes) later."""
    from devkit.provision.onhost import facts as host_facts

    (tmp_path / "state").mkdir()
    fresh = HostInfo.parse(host_facts.host_info(str(tmp_path)))
    (tmp_path / "state" / "probes.json").write_text('{"docker": "unix:///run/first.sock"}')
    later = HostInfo.parse(host_facts.host_info(str(tmp_path)))
    assert later.docker == "unix:///run/first.sock" and later.docker_now == fresh.docker
    from tests.unit.test_provision_pure import _bai

    d = _bai({"docker": "unix:///run/first.sock"})
    probes = next(f for f in d.of("files") if f.id == "probes.json")
    assert json.loads(probes.content) == {"docker": "unix:///run/first.sock"}


def test_inventory_finds_every_stack_devkit_left_on_a_host(tmp_path: Path) -> None:
    """The inventory script, run by a real shell with its own HOME: markers in ~/.devkit and in its
    folder for this host are found (not another sandbox's); with a base dir, only there."""
    home = tmp_path / "home"
    for rel, marker in [
        (".devkit/halfstack", "halfstack\n"),
        (".devkit/vm/backend.ai", "backend.ai\n"),
        (".devkit/other-host/backend.ai", "backend.ai\n"),
        ("elsewhere/mine", "custom\n/srv/stacks/custom\n"),
        (".devkit/notdevkits", None),
    ]:
        (home / rel).mkdir(parents=True)
        if marker:
            (home / rel / ".devkit-stack").write_text(marker)

    def found_for(t: hosts.Target) -> list[operate.Found]:
        recorder = FakeHost("vm")
        operate.inventory(recorder, t)
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            ["sh", "-c", recorder.log[-1][1]], capture_output=True, text=True, env=env
        )
        return sorted(operate.inventory(FakeHost("vm").on(r"^inventory$", stdout=out.stdout), t))

    t = hosts.Target("vm", "vm", "halfstack", "", {})
    found = found_for(t)
    assert found == [
        operate.Found(f"{home}/.devkit/halfstack", "halfstack", ""),
        operate.Found(f"{home}/.devkit/vm/backend.ai", "backend.ai", ""),
    ]
    mine = hosts.Target("vm", "vm", "halfstack", "~/elsewhere/mine", {})
    assert found_for(mine) == [
        operate.Found(f"{home}/elsewhere/mine", "custom", "/srv/stacks/custom")
    ]
    assert [f.stack for f in operate.choose(found, t, "halfstack")] == ["halfstack"]
    with pytest.raises(DevkitError, match="no backend stack found") as info:
        operate.choose(found, t, "backend")
    assert "--stack backend" in info.value.hint


def test_resolve_agrees_with_ssh_g_on_globs_includes_and_defaults(
    tmp_path: Path, monkeypatch
) -> None:
    """What devkit connects with is what `ssh -G` says, host by host (OpenSSH is the reference)."""
    (tmp_path / "lab.conf").write_text("Host *.lab\n  User labuser\n  Port 2202\n")
    cfg = tmp_path / "config"
    cfg.write_text(
        f"Include {tmp_path}/lab.conf\nHost web*\n  HostName 10.0.0.9\nHost *\n  User fallback\n"
    )
    monkeypatch.setenv("DEVKIT_SSH_CONFIG", str(cfg))
    for host in ("db.lab", "web1", "other"):
        mine = ssh.resolve(host)
        ref = ssh.parse_ssh_g(
            subprocess.run(
                ["ssh", "-G", "-F", str(cfg), host], capture_output=True, text=True
            ).stdout
        )
        assert (mine.hostname, mine.user, mine.port) == (ref.hostname, ref.user, ref.port), host
    assert ssh.resolve("db.lab")[1:3] == ("labuser", 2202)
    assert ssh.resolve("web1")[:2] == ("10.0.0.9", "fallback")
