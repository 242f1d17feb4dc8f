"""The edit loop's host side (devkit/provision/onhost/), run here in-process as the shipped script
runs it on a host: against a real supervisord and real git checkouts, as the current user (no sshd,
no root). The same code runs on sandbox hosts in tests/editloop/test_editloop.py; here the host
side is measured too."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from devkit.provision.onhost import push
from devkit.provision.onhost.edit import cli, services
from devkit.provision.transfer import gitpush

SERVICE = "import sys, time; open(sys.argv[1], 'a').write('started\\n'); time.sleep(3600)"
CONF = """
[unix_http_server]
file={base}/run/supervisor.sock
[supervisord]
logfile={base}/logs/supervisord.log
pidfile={base}/run/supervisord.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:alpha]
command={py} -c "{code}" {base}/alpha.starts
stdout_logfile={base}/logs/alpha.log
redirect_stderr=true
startsecs=0
[program:beta]
command={py} -c "{code}" {base}/beta.starts
stdout_logfile={base}/logs/beta.log
redirect_stderr=true
startsecs=0
"""


class Stack(NamedTuple):
    base: Path
    checkout: Path
    rules: dict[str, Any]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def _pids(base: Path) -> dict[str, int]:
    rpc = services.supervisor(str(base / "run" / "supervisor.sock"))
    return {p["name"]: int(p["pid"]) for p in rpc.getAllProcessInfo()}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A provisioned stack's base dir as the edit kind leaves it (its marker, its rules, its
    services record), a checkout, and a real supervisord running two services from it."""
    base, checkout = tmp_path / "base", tmp_path / "checkout"
    for d in ("run", "logs", "state", "supervisor"):
        (base / d).mkdir(parents=True)
    (base / ".devkit-stack").write_text("demo\n")
    checkout.mkdir()
    _git(checkout, "init", "-q", "-b", "main")
    for rel, text in {
        "src/alpha/a.py": "A = 1\n",
        "src/beta/b.py": "B = 1\n",
        "docs/x.md": "x\n",
    }.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
    _git(checkout, "add", "-A")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    rules = {
        "version": 1, "stack": "demo", "host": "vm", "base": str(base),
        "checkout": str(checkout), "python": sys.executable, "debounce": 0.1,
        "pythonpath": ["src"], "order": ["alpha", "beta"],
        "services": {"alpha": ["src/alpha/**"], "beta": ["src/beta/**"]},
        "notes": [{"paths": ["docs/**"], "note": "the docs are built elsewhere"}],
    }  # fmt: skip
    (base / "supervisor" / "edit.json").write_text(json.dumps(rules))
    (base / "state" / "services.json").write_text(json.dumps({"health": {}}))
    conf = base / "supervisor" / "supervisord.conf"
    conf.write_text(CONF.format(base=base, py=sys.executable, code=SERVICE))
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if all(_pids(base).values()):
                    break
            time.sleep(0.05)
        time.sleep(1.1)  # a file saved from now on is newer than each service's start
        yield Stack(base, checkout, rules)
    finally:
        with contextlib.suppress(OSError):
            services.supervisor(str(base / "run" / "supervisor.sock")).shutdown()
        pid = base / "run" / "supervisord.pid"
        deadline = time.monotonic() + 20
        while pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _run(*argv: str) -> dict[str, Any]:
    """The shipped script's command, here: its one line of JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["devkit-edit.py", *argv]) == 0
    return dict(json.loads(out.getvalue().strip().splitlines()[-1]))


def test_locate_finds_the_stack_by_its_base_dir_or_by_its_name(stack: Stack) -> None:
    where = _run("locate", json.dumps({"base": str(stack.base)}))
    assert where["base"] == str(stack.base) and where["rules"]["order"] == ["alpha", "beta"]
    wrong = _run("locate", json.dumps({"base": str(stack.base), "stack": "other"}))
    assert wrong["error"].startswith("no provisioned stack with an edit loop")


def test_a_save_restarts_only_the_service_whose_files_it_changed(stack: Stack) -> None:
    req = json.dumps({"base": str(stack.base)})
    assert _run("changed", req)["restarted"] == []  # nothing saved since they started
    before = _pids(stack.base)
    (stack.checkout / "src/alpha/a.py").write_text("A = 2\n")
    (stack.checkout / "docs/x.md").write_text("y\n")
    would = _run("changed", json.dumps({"base": str(stack.base), "dry_run": True}))
    assert [w["service"] for w in would["would"]] == ["alpha"] and _pids(stack.base) == before
    report = _run("changed", req)
    [r] = report["restarted"]
    assert (r["service"], r["ok"], r["files"]) == ("alpha", True, ["src/alpha/a.py"])
    after = _pids(stack.base)
    assert after["alpha"] != before["alpha"] and after["beta"] == before["beta"]
    assert report["notes"] == [{"note": "the docs are built elsewhere", "files": ["docs/x.md"]}]


def test_a_save_that_does_not_compile_keeps_the_running_service(stack: Stack) -> None:
    before = _pids(stack.base)
    (stack.checkout / "src/beta/b.py").write_text("def broken(:\n")
    report = _run("changed", json.dumps({"base": str(stack.base)}))
    [kept] = report["kept"]
    assert kept["service"] == "beta" and kept["errors"][0]["file"] == "src/beta/b.py"
    assert _pids(stack.base) == before


def test_sync_brings_a_clone_and_its_uncommitted_work_into_the_hosts_checkout(
    stack: Stack, tmp_path: Path
) -> None:
    """The push's host side (onhost/push.py) as `devkit sync` drives it: inspect, unbundle, apply,
    then restart what changed under the edit lock; an edit made on the host is never overwritten."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(stack.checkout), str(clone)], check=True)
    (clone / "src/alpha/a.py").write_text("A = 3\n")  # uncommitted, on this machine
    local = gitpush.snapshot(clone)
    seen = push.inspect({"checkout": str(stack.checkout), "find": {}, "wip": local.wip})
    assert seen["exists"] and seen["git"] and not seen["has_wip"]
    bundle = tmp_path / "push.bundle"
    bundle.write_bytes(gitpush._bundle(local, []))
    before = _pids(stack.base)
    rules = json.dumps({"rules": str(stack.base / "supervisor" / "edit.json")})
    here = Path(cli.__file__).parents[4]  # the host's script is the package, shipped; here, run
    then = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(here)!r}); "
            "from devkit.provision.onhost.edit import cli; sys.exit(cli.main(sys.argv))",
            "changed", rules]  # fmt: skip
    req = {
        "checkout": str(stack.checkout), "wip": local.wip, "branch": local.branch, "init": False,
        "host": "vm", "save": False, "bundle": str(bundle),
        "lock": str(stack.base / "run" / "edit.lock"), "then": then,
    }  # fmt: skip
    out = push.apply(req)
    assert out["applied"] and "src/alpha/a.py" in out["changed"], out
    assert (stack.checkout / "src/alpha/a.py").read_text() == "A = 3\n"
    assert [r["service"] for r in out["then"]["restarted"]] == ["alpha"], out["then"]
    assert _pids(stack.base)["alpha"] != before["alpha"]
    assert not bundle.exists()  # uploaded for that run only
    # an edit made on the host since: the next push that would overwrite it is refused
    (stack.checkout / "src/alpha/a.py").write_text("A = 'host'\n")
    (clone / "src/alpha/a.py").write_text("A = 4\n")
    local = gitpush.snapshot(clone)
    bundle.write_bytes(gitpush._bundle(local, []))
    out = push.apply({**req, "wip": local.wip, "bundle": str(bundle), "then": None})
    assert not out.get("applied") and "src/alpha/a.py" in str(out), out
    assert (stack.checkout / "src/alpha/a.py").read_text() == "A = 'host'\n"


@pytest.mark.parametrize("how", ["inotify", "polling"])
def test_the_watcher_restarts_a_service_on_a_save_and_says_so(stack: Stack, how: str) -> None:
    """`devkit-edit.py watch RULES` as its supervisord program runs it (here from the package): a
    save in a new folder of alpha's restarts alpha alone, once the saves have settled."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if how == "polling":
        env["DEVKIT_WATCH_POLL"] = "1"
    rules = stack.base / "supervisor" / "edit.json"
    log = stack.base / "logs" / "watch.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", cli.__name__, "watch", str(rules)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while "watching" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        before = _pids(stack.base)
        new = stack.checkout / "src/alpha/sub/c.py"
        new.parent.mkdir()
        new.write_text("C = 1\n")
        while "alpha: restarted" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        after = _pids(stack.base)
        assert after["alpha"] != before["alpha"] and after["beta"] == before["beta"]
    finally:
        proc.send_signal(signal.SIGINT)  # as a person's ^C: it ends cleanly
        assert proc.wait(timeout=30) == 0
    text = log.read_text()
    head = text.splitlines()[0]
    assert ("polling every 0.5 s" in head) == (how == "polling"), head
    assert "a save restarts: alpha <- src/alpha/**; beta <- src/beta/**" in text
    assert "alpha: restarted (src/alpha/sub/c.py changed), healthy in" in text
