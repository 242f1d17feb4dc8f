"""The edit loop end to end on real sandbox hosts: real sshd, supervisord, git and services that
answer HTTP from the checkout. restart --changed, the watcher, devkit watch, sync, ssh-config
--write with OpenSSH itself, and devkit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.provision.onhost.edit import imports as edit_imports
from tests import docs_examples
from tests.editloop import testrepo
from tests.editloop.conftest import (
    HOSTS,
    Env,
    answer,
    base,
    checkout,
    edit,
    netns,
    pids,
    wait_for,
)
from tests.ssh.conftest import devkit, failed

pytestmark = [pytest.mark.ssh, pytest.mark.root]

ALPHA, BETA, COMMON = "src/alpha/server.py", "src/beta/server.py", "src/common/__init__.py"


def changed(env: Env, host: str = "el1", *more: str) -> subprocess.CompletedProcess[str]:
    return devkit(env.bed, "restart", "--changed", host, "--base-dir", env.bed.base, *more)


def shown(env: Env, key: str, host: str, outputs: list[str]) -> None:
    """The docs' example `key` (docs/how-to/edit-loop.md) shows these outputs, with the test's
    host as `vm` and its checkout as /root/myproject."""
    names = {str(checkout(env, host)): "/root/myproject", host: "vm"}
    docs_examples.compare(key, outputs, names)


def test_services_run_from_the_checkout_and_a_second_provision_changes_nothing(env: Env) -> None:
    for h in HOSTS:
        assert answer(env, h, "alpha")["answer"] == "alpha-1"
        assert answer(env, h, "beta")["greeting"] == "hello"
        settings = json.loads((checkout(env, h) / ".vscode" / "settings.json").read_text())
        assert (
            settings["python.defaultInterpreterPath"] == f"{checkout(env, h)}/dist/venv/bin/python"
        )
        assert settings["python.analysis.extraPaths"] == ["src"]
        assert settings["terminal.integrated.env.linux"] == {"PYTHONPATH": "${workspaceFolder}/src"}
        # the repository ignores it: the contributor's `git status` stays clean
        assert testrepo.git(checkout(env, h), "status", "--porcelain") == ""
    assert set(pids(env, "el2")) == {"alpha", "beta", "devkit-watch"}  # watch = true there only
    assert set(pids(env, "el1")) == {"alpha", "beta"}
    r = devkit(env.bed, "provision", *HOSTS, "--base-dir", env.bed.base, "--format", "json")
    assert r.returncode == 0, failed(r.stdout) + r.stderr
    assert [h["status"] for h in json.loads(r.stdout)["hosts"]] == ["unchanged"] * 3


def test_restart_changed_restarts_only_the_edited_service(env: Env, clean: None) -> None:
    before = pids(env, "el1")
    edit(env, "el1", ALPHA, '"alpha-1"', '"alpha-2"')
    r = changed(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"el1: alpha: restarted ({ALPHA} changed), healthy in "), r.stdout
    assert len(r.stdout.splitlines()) == 1
    after = pids(env, "el1")
    assert after["alpha"] != before["alpha"] and after["beta"] == before["beta"]
    assert answer(env, "el1", "alpha")["answer"] == "alpha-2"
    again = changed(env)  # once restarted, the edit is older than the process
    assert again.stdout == "el1: nothing to restart: no service's files changed since it started\n"
    assert pids(env, "el1") == after
    shown(env, "edit-restart-changed", "el1", [r.stdout, again.stdout])


def test_an_edit_to_the_shared_package_restarts_every_service(env: Env, clean: None) -> None:
    before = pids(env, "el1")
    edit(env, "el1", COMMON, '"hello"', '"hi"')
    r = changed(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [ln.split(" (")[0] for ln in r.stdout.splitlines()] == [
        "el1: alpha: restarted",
        "el1: beta: restarted",
    ]
    after = pids(env, "el1")
    assert after["alpha"] != before["alpha"] and after["beta"] != before["beta"]
    assert answer(env, "el1", "alpha")["greeting"] == answer(env, "el1", "beta")["greeting"] == "hi"
    shown(env, "edit-restart-shared", "el1", [r.stdout])


def test_a_note_path_restarts_nothing_and_a_dry_run_restarts_nothing(env: Env, clean: None) -> None:
    settled(env, "el1")
    before = pids(env, "el1")
    (checkout(env, "el1") / "src/pages/motd.txt").write_text("welcome back\n")
    edit(env, "el1", BETA, '"beta-1"', '"beta-2"')
    r = changed(env, "el1", "--dry-run")
    assert r.stdout.splitlines() == [
        f"el1: beta: would restart ({BETA} changed)",
        f"el1:     {BETA} is its main module (beta.server)",
        "el1: note: src/pages/motd.txt changed: read on every request: nothing to restart",
    ]
    assert pids(env, "el1") == before
    assert answer(env, "el1", "alpha")["page"] == "welcome back"  # served as it is, no restart
    shown(env, "edit-restart-dry-run", "el1", [r.stdout])


def test_a_file_that_does_not_compile_keeps_the_running_service(env: Env, clean: None) -> None:
    before = pids(env, "el1")
    edit(env, "el1", ALPHA, 'ANSWER = "alpha-1"', 'ANSWER = "alpha-3"\ndef broken(:')
    r = changed(env)
    assert r.returncode == 1
    assert r.stdout == (
        f"el1: alpha: NOT restarted: {ALPHA}:5: SyntaxError: invalid syntax; the running process "
        f"(pid {before['alpha']}) keeps serving\n"
    )
    assert pids(env, "el1") == before and answer(env, "el1", "alpha")["answer"] == "alpha-1"
    shown(env, "edit-restart-syntax", "el1", [r.stdout])
    edit(env, "el1", ALPHA, "def broken(:", "")
    r = changed(env)
    assert r.returncode == 0 and "alpha: restarted" in r.stdout
    assert answer(env, "el1", "alpha")["answer"] == "alpha-3"


# asks a URL every 10 ms for `seconds`, inside a host's network namespace; prints what it saw
POLLER = """
import json, sys, time, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
ok, failed, answers, end = 0, [], [], time.time() + seconds
while time.time() < end:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            a = json.loads(r.read())["answer"]
        ok += 1
        if not answers or answers[-1] != a:
            answers.append(a)
    except Exception as exc:
        failed.append(repr(exc))
    time.sleep(0.01)
print(json.dumps({"ok": ok, "failed": failed, "answers": answers}))
"""


def poller(env: Env, host: str, service: str, seconds: float) -> subprocess.Popen[str]:
    url = f"http://127.0.0.1:{env.ports[host][service]}/"
    ns = f"--net=/run/netns/{netns(env, host)}"
    return subprocess.Popen(
        ["nsenter", ns, sys.executable, "-c", POLLER, url, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


def settled(env: Env, host: str) -> None:
    """Every process's import record on the host is older than the edit loop's settle time (the
    records of processes that have just started are not used yet)."""
    folder = base(env, host) / "run" / "serving"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # the serving processes' own records too (one that has just started has none yet)
        want = [
            folder / f"{s}.imports.{answer(env, host, s)['pid']}.json" for s in ("alpha", "beta")
        ]
        ages = [time.time() - p.stat().st_mtime for p in folder.glob("*.imports.*.json")]
        if all(w.exists() for w in want) and min(ages) > edit_imports.SETTLE + 0.2:
            return
        time.sleep(0.2)
    raise AssertionError(f"the import records in {folder} did not settle")


def test_an_overlapped_restart_refuses_no_request_and_a_crash_keeps_the_old_process(
    env: Env, clean: None
) -> None:
    before = pids(env, "el1")
    watch = poller(env, "el1", "alpha", 8)
    time.sleep(1)
    edit(env, "el1", ALPHA, '"alpha-1"', '"alpha-o"')
    r = changed(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.endswith("; the old process served until then\n"), r.stdout
    seen = json.loads(watch.communicate(timeout=60)[0])
    # every request answered: by the old process, then by both while the new one takes over
    assert seen["failed"] == [] and seen["ok"] > 100, seen
    assert set(seen["answers"]) == {"alpha-1", "alpha-o"} and seen["answers"][-1] == "alpha-o"
    serving = pids(env, "el1")["alpha"]
    assert serving != before["alpha"]
    # a new process that crashes on start: the old one keeps serving, and the command says why
    edit(env, "el1", ALPHA, "from common.web import serve", "from common.web import serve, gone")
    r = changed(env)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0] == (
        f"el1: alpha: NOT restarted ({ALPHA} changed): its new process crashed on start (exit "
        f"code 1); the old one (pid {serving}) keeps serving; the last lines of its log:"
    ), r.stdout
    assert "el1:     | Traceback (most recent call last):" in lines
    assert lines[-1] == (
        "el1:     | ImportError: cannot import name 'gone' from 'common.web' "
        f"({checkout(env, 'el1')}/src/common/web.py)"
    ), r.stdout
    assert answer(env, "el1", "alpha")["pid"] == serving == pids(env, "el1")["alpha"]
    # how long each edit took to serve: in `devkit status`
    r = devkit(env.bed, "status", "el1", "--base-dir", env.bed.base, "--format", "json")
    alpha = next(x for x in json.loads(r.stdout)["services"] if x["service"] == "alpha")
    assert alpha["edit"]["count"] >= 1 and alpha["edit"]["how"] == "overlapped", alpha
    assert 0 < alpha["edit"]["last"] < 30


def test_a_module_of_common_only_alpha_imports_spares_beta(env: Env, clean: None) -> None:
    settled(env, "el1")
    before = pids(env, "el1")
    extra = "src/common/extra.py"
    edit(env, "el1", extra, "only alpha", "alpha alone")
    r = changed(env, "el1", "--dry-run")
    assert r.stdout.splitlines() == [
        f"el1: alpha: would restart ({extra} changed)",
        f"el1:     {extra} is imported: alpha.server -> common.extra",
        f"el1: beta: not restarted for {extra}: its process never imported it",
    ], r.stdout
    shown(env, "edit-restart-imports", "el1", [r.stdout])
    # by the paths alone, both would restart (src/common/** is beta's too)
    r = changed(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [ln.split(" (")[0] for ln in r.stdout.splitlines()] == [
        "el1: alpha: restarted",
        f"el1: beta: not restarted for {extra}: its process never imported it",
    ]
    after = pids(env, "el1")
    assert after["alpha"] != before["alpha"] and after["beta"] == before["beta"]


def in_log(log: Path, line: str, timeout: float = 20) -> None:
    """Wait until the watcher has logged it (it logs once the restarts are done)."""
    deadline = time.monotonic() + timeout
    while line not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert line in log.read_text(), log.read_text()


def test_the_watcher_serves_a_save_and_keeps_the_old_process_on_a_syntax_error(env: Env) -> None:
    log = base(env, "el2") / "logs" / "devkit-watch.log"
    before = pids(env, "el2")
    edit(env, "el2", ALPHA, '"alpha-1"', '"alpha-w1"')
    wait_for(env, "el2", "alpha", "answer", "alpha-w1")  # no command: the watcher did it
    assert pids(env, "el2")["beta"] == before["beta"]
    in_log(log, f"alpha: restarted ({ALPHA} changed)")
    serving = pids(env, "el2")["alpha"]
    edit(env, "el2", ALPHA, 'ANSWER = "alpha-w1"', 'ANSWER = "alpha-w2"\nif True\n')
    in_log(
        log,
        f"alpha: NOT restarted: {ALPHA}:5: SyntaxError: expected ':'; "
        f"the running process (pid {serving}) keeps serving",
    )
    still = answer(env, "el2", "alpha")
    assert (still["answer"], still["pid"]) == ("alpha-w1", serving)
    edit(env, "el2", ALPHA, "if True\n", "")
    wait_for(env, "el2", "alpha", "answer", "alpha-w2")
    # the shared package: every service, once
    edit(env, "el2", COMMON, '"hello"', '"hey"')
    wait_for(env, "el2", "alpha", "greeting", "hey")
    wait_for(env, "el2", "beta", "greeting", "hey")
    in_log(log, f"beta: restarted ({COMMON} changed)")
    time.sleep(1)  # a second restart for the same save would be logged by now
    assert log.read_text().count(f"beta: restarted ({COMMON} changed)") == 1


def test_devkit_watch_runs_a_watcher_while_it_shows_it_when_watch_is_off(
    env: Env, clean: None
) -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "devkit", "watch", "el1", "--base-dir", env.bed.base],
        cwd=env.bed.dir,
        env=env.bed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line)
            if "watching src/alpha" in line:
                break
        assert "the watcher is off in the stack (watch = false)" in lines[0], lines
        assert "devkit-watch" in pids(env, "el1")  # under the stack's supervisord
        edit(env, "el1", BETA, '"beta-1"', '"beta-d"')
        for line in p.stdout:
            lines.append(line)
            if "beta: restarted" in line:
                break
        assert answer(env, "el1", "beta")["answer"] == "beta-d"
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
    assert "the watcher is stopped again" in out
    assert "devkit-watch" not in pids(env, "el1")
    shown(env, "edit-watch", "el1", ["".join(lines) + out])


def test_sync_serves_a_committed_and_an_uncommitted_change(env: Env, tmp_path: Path) -> None:
    laptop = testrepo.clone(env.bare, tmp_path / "laptop")
    testrepo.git(laptop, "checkout", "-q", "-b", "feat/answers")
    (laptop / ALPHA).write_text((laptop / ALPHA).read_text().replace("alpha-1", "alpha-sync"))
    testrepo.git(laptop, "commit", "-qam", "feat: alpha answers differently")
    (laptop / BETA).write_text((laptop / BETA).read_text().replace("beta-1", "beta-wip"))
    (laptop / "src/pages/new.txt").write_text("an untracked file\n")
    state = testrepo.git(laptop, "status", "--porcelain")
    r = devkit(env.bed, "sync", "el3", "--base-dir", env.bed.base, "--repo", str(laptop))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("el3: pushed feat/answers (1 new commit(s), 2 uncommitted file(s))")
    assert any(ln.startswith("el3: alpha: restarted") for ln in lines)
    assert any(ln.startswith("el3: beta: restarted") for ln in lines)
    shown(env, "edit-sync", "el3", [r.stdout])
    assert answer(env, "el3", "alpha")["answer"] == "alpha-sync"
    assert answer(env, "el3", "beta")["answer"] == "beta-wip"
    host = checkout(env, "el3")
    # the host's checkout is on the branch, with the same uncommitted work as the laptop
    assert testrepo.git(host, "symbolic-ref", "--short", "HEAD").strip() == "feat/answers"
    assert testrepo.git(host, "status", "--porcelain") == state
    assert testrepo.git(laptop, "status", "--porcelain") == state  # the laptop untouched
    r = devkit(env.bed, "sync", "el3", "--base-dir", env.bed.base, "--repo", str(laptop))
    assert "nothing to push" in r.stdout and "nothing to restart" in r.stdout, r.stdout


def test_sync_refuses_to_overwrite_an_edit_made_on_the_host(env: Env, tmp_path: Path) -> None:
    laptop = testrepo.clone(env.bare, tmp_path / "laptop")
    host = checkout(env, "el3")
    r = devkit(env.bed, "sync", "el3", "--base-dir", env.bed.base, "--repo", str(laptop))
    assert r.returncode == 0, r.stdout + r.stderr
    (host / BETA).write_text((host / BETA).read_text().replace("beta-1", "beta-on-the-host"))
    (host / "README.md").write_text("notes made on the host\n")
    (laptop / BETA).write_text((laptop / BETA).read_text().replace("beta-1", "beta-laptop"))
    host_before, laptop_before = (host / BETA).read_text(), (laptop / BETA).read_text()
    running = pids(env, "el3")
    r = devkit(env.bed, "sync", "el3", "--base-dir", env.bed.base, "--repo", str(laptop))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.splitlines()[:3] == [
        f"devkit: el3: sync refused: it would overwrite work on el3 in {host}:",
        f"    {BETA}  (edited on el3)",
        "  nothing was changed on el3 or here",
    ]
    assert "devkit sync el3 --save-host-edits" in r.stderr
    shown(env, "edit-sync-refused", "el3", [r.stderr])
    # nothing lost or changed on either side, nothing restarted
    assert (host / BETA).read_text() == host_before and (laptop / BETA).read_text() == laptop_before
    assert (host / "README.md").read_text() == "notes made on the host\n"
    assert pids(env, "el3") == running
    # resolved: the host's edits come here first, then the push goes over them
    r = devkit(
        env.bed,
        "sync",
        "el3",
        "--base-dir",
        env.bed.base,
        "--repo",
        str(laptop),
        "--save-host-edits",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    saved = testrepo.git(laptop, "show", "devkit/host-edits/el3:" + BETA)
    assert saved == host_before and "notes made on the host" in testrepo.git(
        laptop, "show", "devkit/host-edits/el3:README.md"
    )
    assert (host / BETA).read_text() == laptop_before
    assert answer(env, "el3", "beta")["answer"] == "beta-laptop"


def test_sync_watch_brings_each_laptop_save_to_serving(env: Env, tmp_path: Path) -> None:
    laptop = testrepo.clone(env.bare, tmp_path / "laptop")
    r = devkit(env.bed, "sync", "el3", "--base-dir", env.bed.base, "--repo", str(laptop))
    assert r.returncode == 0, r.stdout + r.stderr
    p = subprocess.Popen(
        [sys.executable, "-m", "devkit", "sync", "--watch", "el3", "--base-dir", env.bed.base],
        cwd=laptop,
        env=env.bed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        assert p.stdout is not None

        def until(text: str) -> None:
            for line in p.stdout:  # type: ignore[union-attr]
                lines.append(line)
                if text in line:
                    return
            raise AssertionError("".join(lines))

        until("nothing to push")
        (laptop / ALPHA).write_text((laptop / ALPHA).read_text().replace("alpha-1", "alpha-w"))
        until("alpha: restarted")
        assert answer(env, "el3", "alpha")["answer"] == "alpha-w"
        # an edit made on the host is never overwritten: the push is refused, nothing changes
        host = checkout(env, "el3")
        (host / BETA).write_text((host / BETA).read_text().replace("beta-1", "beta-host"))
        (laptop / BETA).write_text((laptop / BETA).read_text().replace("beta-1", "beta-laptop"))
        until("the next save tries again")
        assert "beta-host" in (host / BETA).read_text()
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
    text = "".join(lines) + out
    assert text.startswith("el3: watching src/alpha, src/beta, src/common, src/pages in "), text
    assert f"el3: pushed main (no new commits, 1 uncommitted file(s)) to {host}: {ALPHA}" in text
    assert f"el3:     {BETA}  (edited on el3)" in text
    assert text.rstrip().endswith(f"el3: stopped watching {laptop}")
    assert "devkit-watch" not in pids(env, "el3")  # the watcher run for it is gone again
    shown(env, "edit-sync-watch", "el3", [text.split("el3: sync refused")[0]])
    (host / BETA).write_text((host / BETA).read_text().replace("beta-host", "beta-1"))


def test_ssh_config_write_is_idempotent_and_openssh_reaches_the_host_twice_at_once(
    env: Env,
) -> None:
    cfg = Path(env.bed.env["DEVKIT_SSH_CONFIG"])
    mine = "Host example\n  HostName example.invalid\n  User someone\n"
    text = cfg.read_text()  # the sandboxes' Include is there already
    cfg.write_text(text + mine)
    for _ in range(2):
        r = devkit(env.bed, "ssh-config", "el1", "--write")
        assert r.returncode == 0, r.stderr
    assert "unchanged: Host el1-tunnel" in r.stdout
    after = cfg.read_text()
    assert after == text + mine and after.count("Include") == 1  # nothing but the one Include
    managed = (env.bed.dir / "state" / "ssh_config").read_text()
    assert managed.count("Host el1-tunnel") == 1 and "Host el1\n" not in managed  # the sandbox's
    ports = env.ports["el1"]
    base_cmd = ["ssh", "-F", str(cfg), "-o", "BatchMode=yes"]
    tunnel = subprocess.Popen([*base_cmd, "-N", "el1-tunnel"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        got = None
        while time.monotonic() < deadline:
            r = subprocess.run(
                ["curl", "-sf", "-m", "2", f"http://127.0.0.1:{ports['alpha']}/"],
                capture_output=True,
                text=True,
                check=False,
            )
            if r.returncode == 0:
                got = json.loads(r.stdout)
                break
            time.sleep(0.1)
        assert got and got["service"] == "alpha"  # forwarded from this machine
        # VS Code opens several connections to the host alias: none binds a local port
        both = [
            subprocess.Popen(
                [*base_cmd, "el1", "sleep 1; hostname"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=30) for p in both]
        assert [p.returncode for p in both] == [0, 0], outs
        assert not any("bind" in err or "forward" in err.lower() for _, err in outs), outs
    finally:
        tunnel.terminate()
        tunnel.communicate(timeout=10)


def test_devkit_code_prints_the_command_and_runs_code_where_it_exists(
    env: Env, tmp_path: Path
) -> None:
    r = devkit(env.bed, "code", "el1", "--base-dir", env.bed.base)
    assert r.returncode == 0, r.stderr
    assert f"code --remote ssh-remote+el1 {checkout(env, 'el1')}\n" in r.stdout
    shown(env, "edit-code", "el1", [r.stdout])
    # a stand-in for VS Code's `code` command (VS Code cannot run here): it records its arguments
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "code").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\n')
    (bin_dir / "code").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    r = devkit(env.bed, "code", "el1", "--base-dir", env.bed.base, env={"PATH": path})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "argv").read_text().splitlines() == [
        "--remote",
        "ssh-remote+el1",
        str(checkout(env, "el1")),
    ]
