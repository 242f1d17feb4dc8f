"""What the source-mode end-to-end tests share (tests/e2e/test_source*.py): an isolated sandbox host
of a Debian release with devkit's state in a temp dir, devkit and plain ssh against it, and the
looks at the provisioned Backend.AI checkout they make (status, the manager's answer, an edit
saved on the host, which services restarted)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.e2e.checks import devkit_in
from tests.ssh.conftest import drop_lock_dirs, isolated_env, lock_dirs, ssh

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("DEVKIT_FIXTURES") or ROOT.parent / "shared" / "fixtures")
CHECKOUT = "/root/backend.ai"  # root's checkout inside the sandbox, where a person opens it
FOUR = ["agent", "manager", "storage-proxy", "webserver"]


class Bed(NamedTuple):
    dir: Path
    env: dict[str, str]
    wheels: Path
    host: str

    @property
    def base(self) -> str:
        return f"/var/lib/devkit/{self.host}/backend.ai"  # root's base dir inside the sandbox


def need(bundle: Path | None) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the sandbox host is an isolated Debian with its own namespaces")
    if bundle is not None and not bundle.is_file():
        pytest.skip(f"the Backend.AI branch is not there: {bundle} (../shared/fixtures)")
    for tool in ("/usr/sbin/debootstrap", "/usr/bin/tinyproxy", "/usr/bin/unshare"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")


@contextlib.contextmanager
def sandbox_bed(
    host: str, release: str, bundle: Path | None, stack: str | None = None
) -> Iterator[Bed]:
    """An isolated sandbox host of that release, up for the block, with devkit's state (and
    ssh_config, known_hosts) in a temp dir of its own; removed afterwards. The project's stack
    is `stack` (a stack.toml's text), else the default one, backend.ai."""
    need(bundle)
    d = Path(tempfile.mkdtemp(prefix=f"dk{host}-", dir="/tmp"))
    d.chmod(0o755)
    if stack is None:
        (d / "pyproject.toml").write_text("[tool.devkit]\n")
    else:
        (d / "stack").mkdir()
        (d / "stack" / "stack.toml").write_text(stack)
        (d / "pyproject.toml").write_text(f'[tool.devkit.provision]\nstack = "{d / "stack"}"\n')
    wheels = Path(
        os.environ.get("DEVKIT_TEST_WHEELS") or Path.home() / ".cache" / "devkit-tests" / "wheels"
    )
    wheels.mkdir(parents=True, exist_ok=True)
    # the LFS files' wheels, fetched from PyPI once per machine rather than once per run
    cache = Path.home() / ".cache" / "devkit-tests" / "wheel-cache"
    b = Bed(d, {**isolated_env(d), "DEVKIT_WHEEL_CACHE": str(cache)}, wheels, host)
    locks = lock_dirs()
    try:
        r = devkit(b, "sandbox", "up", host, "--release", release, timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        yield b
    finally:
        devkit(b, "sandbox", "down", host, timeout=300)
        drop_lock_dirs(locks)
        shutil.rmtree(d, ignore_errors=True)


def devkit(
    bed: Bed, *args: str, timeout: float = 1800, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return devkit_in(cwd or bed.dir, bed.env, *args, timeout=timeout)


def on_host(bed: Bed, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return ssh(bed.env, bed.host, script, timeout=timeout)


def status(bed: Bed) -> dict[str, Any]:
    r = devkit(bed, "status", bed.host, "--format", "json", timeout=120)
    assert r.stdout, r.stderr
    return json.loads(r.stdout)


# the manager's `GET /` from the host (python3 is there; curl need not be)
_GET_ROOT = "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:8091/\", timeout=5).read().decode())'"


def manager_root(bed: Bed) -> dict[str, Any]:
    r = on_host(bed, _GET_ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def edit(bed: Bed, rel: str, old: str, new: str) -> None:
    """Save a file of the host's checkout, as an editor there would."""
    script = (
        f"import sys; p = {CHECKOUT + '/' + rel!r}; t = open(p).read(); "
        f"assert t.count({old!r}) == 1, 'moved'; open(p, 'w').write(t.replace({old!r}, {new!r}))"
    )
    r = on_host(bed, f"python3 -c {shlex.quote(script)}")
    assert r.returncode == 0, r.stdout + r.stderr


def pids(bed: Bed) -> dict[str, int]:
    return {s["service"]: s["pid"] for s in status(bed)["services"]}


def restarted(out: str) -> list[str]:
    return sorted(ln.split(": ")[1] for ln in out.splitlines() if ": restarted (" in ln)


def serves(bed: Bed, suffix: str, timeout: float = 90) -> None:
    deadline, got = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        r = on_host(bed, f"{_GET_ROOT} 2>/dev/null")
        got = r.stdout
        if r.returncode == 0 and got and json.loads(got)["manager"].endswith(suffix):
            return
        time.sleep(0.5)
    raise AssertionError(f"the manager never answered with {suffix!r}; last answer {got!r}")


def manager_edit_restarts_the_manager_alone(bed: Bed, handler: str, hello: str, new: str) -> None:
    """Save an edit of the manager's `GET /` handler on the host (`hello` becomes `new`), then
    `devkit restart --changed`: the manager alone restarts, the others keep their processes."""
    before = pids(bed)
    edit(bed, handler, hello, new)
    r = devkit(bed, "restart", "--changed", bed.host)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"{bed.host}: manager: restarted ({handler} changed)"), r.stdout
    assert restarted(r.stdout) == ["manager"], r.stdout
    after = pids(bed)
    assert after["manager"] != before["manager"]
    assert all(after[s] == before[s] for s in ("agent", "storage-proxy", "webserver"))


# the manager's `GET /`, asked every 20 ms on the host until a stop file appears; then what it saw
_POLLER = """
import json, os, sys, time, urllib.request
out, stop = sys.argv[1], sys.argv[1] + ".stop"
ok, failed, answers = 0, [], []
while not os.path.exists(stop):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8091/", timeout=10) as r:
            a = json.loads(r.read())["manager"]
        ok += 1
        if not answers or answers[-1] != a:
            answers.append(a)
    except Exception as exc:
        failed.append(repr(exc))
    time.sleep(0.02)
with open(out + ".tmp", "w") as f:
    json.dump({"ok": ok, "failed": failed, "answers": answers}, f)
os.replace(out + ".tmp", out)
"""


class Poller(NamedTuple):
    bed: Bed
    out: str

    @classmethod
    def start(cls, bed: Bed) -> Poller:
        out = "/root/devkit-poll.json"
        script = f"cat > /root/devkit-poll.py <<'EOF'\n{_POLLER}\nEOF\n"
        r = on_host(
            bed,
            script + f"rm -f {out} {out}.stop; "
            f"nohup python3 /root/devkit-poll.py {out} >/dev/null 2>&1 & sleep 1",
        )
        assert r.returncode == 0, r.stderr
        return cls(bed, out)

    def stop(self) -> dict[str, Any]:
        on_host(self.bed, f"touch {self.out}.stop")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = on_host(self.bed, f"cat {self.out} 2>/dev/null")
            if r.returncode == 0 and r.stdout.strip():
                return dict(json.loads(r.stdout))
            time.sleep(0.5)
        raise AssertionError("the poller on the host never wrote what it saw")


# the manager's `GET /` answer in both lines' handler, as the branch has it or as a test edited it
HELLO = r'"manager": __version__[^,\n]*,'


def answered(text: str, marker: str) -> str:
    """The handler's text, answering with the marker after the version."""
    new, n = re.subn(HELLO, f'"manager": __version__ + "{marker}",', text)
    assert n == 1, "the handler moved"
    return new


def answer_with(bed: Bed, handler: str, marker: str) -> None:
    """The handler as the checkout's HEAD has it, but answering with the marker."""
    new = '"manager": __version__ + "' + marker + '",'
    script = (
        "import re, sys\n"
        f"p = {CHECKOUT + '/' + handler!r}\n"
        f"t, n = re.subn({HELLO!r}, {new!r}, open(p).read())\n"
        "assert n == 1, 'moved'\n"
        "open(p, 'w').write(t)\n"
    )
    r = on_host(
        bed, f"cd {CHECKOUT} && git checkout -- {handler} && python3 -c {shlex.quote(script)}"
    )
    assert r.returncode == 0, r.stdout + r.stderr


def overlapped_edit_refuses_no_request(bed: Bed, handler: str, marker: str) -> None:
    """A handler edit through `restart --changed`: the manager's new process starts beside the old
    one, and a poller on the host sees every request answered, the old answer then the new."""
    poller = Poller.start(bed)
    answer_with(bed, handler, marker)
    r = devkit(bed, "restart", "--changed", bed.host)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{bed.host}: manager: restarted ({handler} changed), healthy in " in r.stdout
    assert "; the old process served until then" in r.stdout, r.stdout
    time.sleep(1)
    seen = poller.stop()
    assert seen["failed"] == [] and seen["ok"] > 50, seen
    assert seen["answers"][0] != seen["answers"][-1] and seen["answers"][-1].endswith(marker)


def crash_on_start_keeps_the_old_manager(bed: Bed, handler: str) -> None:
    """A new manager that cannot import what the edit asks for: the old one keeps serving, and
    `restart --changed` prints the traceback from its log."""
    running, answer = pids(bed)["manager"], manager_root(bed)["manager"]
    broken = "from __future__ import annotations\nimport devkit_no_such_module\n"
    edit(bed, handler, "from __future__ import annotations\n", broken)
    r = devkit(bed, "restart", "--changed", bed.host)
    assert r.returncode == 1, r.stdout + r.stderr
    head = (
        f"{bed.host}: manager: NOT restarted ({handler} changed): its new process crashed on "
        f"start (exit code 1); the old one (pid {running}) keeps serving; the last lines of its log:"
    )
    assert r.stdout.startswith(head), r.stdout
    assert "Traceback (most recent call last):" in r.stdout
    assert "ModuleNotFoundError: No module named 'devkit_no_such_module'" in r.stdout
    assert pids(bed)["manager"] == running and manager_root(bed)["manager"] == answer
    edit(bed, handler, broken, "from __future__ import annotations\n")
    r = devkit(bed, "restart", "--changed", bed.host)
    assert r.returncode == 0 and restarted(r.stdout) == ["manager"], r.stdout + r.stderr


ONLY_THE_MANAGER = "src/ai/backend/common/distributed.py"  # of common/, the manager's alone


def import_sets_spare_what_the_paths_would_restart(bed: Bed) -> None:
    """An edit to a module of common/ that only the manager imports: by the paths, all four
    services would restart (common/** is each one's); by what each process imported, the
    manager alone does, and the dry run says why each is spared."""
    settle = "import glob, os, sys, time\n" + (
        "ages = lambda: [time.time() - os.path.getmtime(p) for p in "
        f"glob.glob({bed.base + '/run/serving/*.imports.*.json'!r})]\n"
        "end = time.time() + 60\n"
        "while time.time() < end and not (ages() and min(ages()) > 3): time.sleep(0.5)\n"
    )
    on_host(bed, f"python3 -c {shlex.quote(settle)}")
    before = pids(bed)
    on_host(bed, f"echo '# an edit' >> {CHECKOUT}/{ONLY_THE_MANAGER}")
    r = devkit(bed, "restart", "--changed", bed.host, "--dry-run")
    lines = r.stdout.splitlines()
    assert f"{bed.host}: manager: would restart ({ONLY_THE_MANAGER} changed)" in lines, r.stdout
    chain = next(ln for ln in lines if ln.startswith(f"{bed.host}:     {ONLY_THE_MANAGER} is"))
    assert "imported at run time" in chain or chain.split(": ", 2)[2].startswith(
        "ai.backend.manager.server -> "
    ), chain
    for s in ("storage-proxy", "agent", "webserver"):
        spared = (
            f"{bed.host}: {s}: not restarted for {ONLY_THE_MANAGER}: its process never imported it"
        )
        assert spared in lines, r.stdout
    r = devkit(bed, "restart", "--changed", bed.host)
    assert r.returncode == 0 and restarted(r.stdout) == ["manager"], r.stdout + r.stderr
    after = pids(bed)
    assert all(after[s] == before[s] for s in ("agent", "storage-proxy", "webserver"))
    r = on_host(
        bed,
        f"cd {CHECKOUT} && git checkout -- {ONLY_THE_MANAGER} && "
        f"touch -d '-1 hour' {ONLY_THE_MANAGER}",
    )
    assert r.returncode == 0, r.stderr


# asks the manager's launcher whether its warm interpreter is ready
_WARM = """
import json, socket, sys, time
end = time.time() + 300
while time.time() < end:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b'{"do": "status"}\\n')
    reply = json.loads(s.makefile().readline())
    if (reply.get("warm") or {}).get("ready"):
        sys.exit(0)
    time.sleep(1)
sys.exit(1)
"""


def _signed(bed: Bed) -> str:
    env = f"{bed.base}/client/env-local-admin-api.sh"
    r = on_host(bed, f"cd {CHECKOUT} && . {env} && ./backend.ai admin user list")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def warm_start_serves_what_a_cold_one_does(bed: Bed, handler: str, marker: str) -> None:
    """The manager's new process, forked from its warm interpreter, answers `GET /` and a signed
    call as one started cold with the same code does."""
    sock = f"{bed.base}/run/serving/manager.sock"
    for attempt in (1, 2):
        # a warm interpreter that loaded a file saved since is not used: the restart then
        # starts cold, and the next one leaves that file out (the earlier phases touched some)
        r = on_host(bed, f"python3 - {sock} <<'EOF'\n{_WARM}\nEOF", timeout=330)
        assert r.returncode == 0, "the manager's warm interpreter never got ready"
        answer_with(bed, handler, f"{marker}{attempt}")
        r = devkit(bed, "restart", "--changed", bed.host)
        assert r.returncode == 0, r.stdout + r.stderr
        if "s (warm); the old process served until then" in r.stdout:
            break
    assert "s (warm); the old process served until then" in r.stdout, r.stdout
    warm = (manager_root(bed), _signed(bed))
    assert warm[0]["manager"].endswith(f"{marker}{attempt}")
    r = devkit(bed, "restart", bed.host, "manager")  # supervisord's restart: a cold start
    assert r.returncode == 0, r.stdout + r.stderr
    assert (manager_root(bed), _signed(bed)) == warm


def sync_watch_serves_a_laptop_save(bed: Bed, clone: Path, handler: str, marker: str) -> None:
    """`devkit sync --watch` in a clone here of the branch the host has: a save there is pushed
    and served, the host's watcher restarting the manager (its lines shown here); Ctrl-C ends
    it."""
    r = on_host(bed, f"cd {CHECKOUT} && git checkout -- {handler}")
    assert r.returncode == 0, r.stderr
    p = subprocess.Popen(
        [sys.executable, "-m", "devkit", "sync", "--watch", bed.host],
        cwd=clone,
        env=bed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line)
            if "nothing to push" in line or "pushed" in line:
                break
        (clone / handler).write_text(answered((clone / handler).read_text(), marker))
        for line in p.stdout:
            lines.append(line)
            if ": manager: restarted (" in line:
                break
        serves(bed, marker)
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
    text = "".join(lines) + out
    assert f"{bed.host}: pushed " in text and f"{handler} changed there" in text, text
    assert f"{bed.host}: manager: restarted ({handler} changed)" in text, text
    assert "devkit-watch" not in pids(bed), text  # the watcher run for it is gone again


# `devkit provision` with each command to the host listed on stderr as it ends (tests only)
_COUNTED = """
import json, sys
from devkit.provision.ssh import client
calls = []
for name in ("run", "put", "get", "hold", "stream"):
    def wrap(self, *a, _o=getattr(client.SSHConnection, name), _n=name, **k):
        calls.append([_n, str(a[1]) if _n in ("run", "hold") else str(a[0])])
        return _o(self, *a, **k)
    setattr(client.SSHConnection, name, wrap)
from devkit.cli import main
try:
    rc = main(sys.argv[1:])
finally:
    sys.stderr.write("\\nCALLS " + json.dumps(calls) + "\\n")
sys.exit(rc)
"""


def noop_provision_calls(bed: Bed, *args: str) -> tuple[dict[str, Any], list[list[str]]]:
    """A provision's JSON summary, and every call it made to the host: [method, op]."""
    r = subprocess.run(
        [sys.executable, "-c", _COUNTED, "provision", bed.host, *args, "--format", "json"],
        cwd=bed.dir,
        env=bed.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    calls = json.loads(r.stderr.rpartition("CALLS ")[2])
    return json.loads(r.stdout), calls


def noop_is_one_round_trip(bed: Bed, source: str) -> None:
    """A second provision changes nothing, and all it asks the host is the facts, in one round
    trip (and the run's lock): the checkout's settings and the init steps' rechecks included."""
    summary, calls = noop_provision_calls(bed, "--set", source)
    assert summary["hosts"][0]["status"] == "unchanged", summary
    assert calls == [["hold", "lock"]], calls


def edit_loop_on_the_real_manager(
    bed: Bed,
    phase: Callable[[str], Any],
    handler: str,
    bundle: Path,
    branch: str,
    clone: Path | None = None,
) -> None:
    """The edit loop's guarantees on the real Backend.AI of the bed's branch (issue 21); `clone`:
    the clone here whose branch the host's checkout has (default: a new one of the bundle)."""
    with phase("overlapped restart: a handler edit served, no request refused"):
        overlapped_edit_refuses_no_request(bed, handler, "+overlap")

    with phase("a new manager that crashes on start: the old one serves, the traceback shown"):
        crash_on_start_keeps_the_old_manager(bed, handler)

    with phase("a module of common/ only the manager imports: the manager alone restarts"):
        import_sets_spare_what_the_paths_would_restart(bed)

    with phase("the warm manager answers as a cold start of the same code"):
        warm_start_serves_what_a_cold_one_does(bed, handler, "+warm")

    with phase("sync --watch: a save in a clone here is served"):
        if clone is None:
            clone = bed.dir / "laptop-watch"
            git = ["git", "clone", "-q", "--branch", branch, str(bundle), str(clone)]
            subprocess.run(git, check=True)
        on_host(bed, f"cd {CHECKOUT} && git reset -q --hard && git status --porcelain")
        sync_watch_serves_a_laptop_save(bed, clone, handler, "+sync-watch")
