"""Backend.AI run from the contributor's checkout, end to end: the real 23.09 branch (the bundle in
../shared/fixtures, as the contributor's remote) on an isolated bookworm sandbox host, its dev venv
from its own pins (pip on the host, through the sandbox's proxy), its LFS files, the four services
from the checkout; the edit loop on it (restart --changed, the watcher, sync from a clone here);
the wheels and back on the same host; and source = local, pushed from a clone here."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.checks import login_script, phases
from tests.e2e.sourcebed import (
    CHECKOUT,
    FIXTURES,
    FOUR,
    ROOT,
    Bed,
    devkit,
    edit,
    edit_loop_on_the_real_manager,
    manager_edit_restarts_the_manager_alone,
    manager_root,
    noop_is_one_round_trip,
    on_host,
    pids,
    restarted,
    sandbox_bed,
    serves,
    status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.ssh]

BUNDLE = FIXTURES / "backend.ai-23.09.bundle"
HOST = "src"
BASE = f"/var/lib/devkit/{HOST}/backend.ai"  # root's base dir inside the sandbox


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    with sandbox_bed(HOST, "bookworm", BUNDLE) as b:
        yield b


@pytest.fixture(scope="module")
def phase() -> Iterator[Callable[[str], Any]]:
    out = ROOT / ".cache" / "source-timings.txt"
    with phases("backend.ai from source, e2e phase timings", out) as timed:
        yield timed


SOURCE = f"backend_ai.source={BUNDLE}@23.09"
# the manager's `GET /` handler, changed to answer with a marker after its version
_SERVER = "src/ai/backend/manager/server.py"
_HELLO = '"manager": __version__,'


@pytest.mark.timeout(4200)
def test_backendai_from_the_23_09_branch(bed: Bed, phase: Callable[[str], Any]) -> None:
    with phase("provision from the bundle (apt, dev venv, LFS, services)"):
        r = devkit(bed, "provision", HOST, "--set", SOURCE, "--wheelhouse", str(bed.wheels))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Backend.AI 23.09.11 from source on src: the checkout /root/backend.ai" in r.stdout
        assert "Git LFS file(s) of /root/backend.ai are still pointers" in r.stdout  # named

    with phase("status: every service healthy, from the checkout"):
        st = status(bed)
        assert st["ok"], st
        out = on_host(
            bed,
            f"tr '\\0' ' ' < /proc/$(cat {BASE}/run/supervisord.pid)/cmdline; cat {BASE}/bin/python",
        ).stdout
        assert f"cd {CHECKOUT}" in out and "PYTHONPATH=" in out
        assert manager_root(bed)["manager"].startswith("23.09")

    with phase("the checkout: the branch, origin, a clean status, the venv"):
        r = on_host(
            bed,
            f"cd {CHECKOUT} && git rev-parse --abbrev-ref HEAD && git remote get-url origin && "
            "git status --porcelain | wc -l && ls dist/export/python/virtualenvs/python-default",
        )
        branch, origin, dirty, venv = r.stdout.split()
        assert (branch, dirty, venv) == ("23.09", "0", "3.11.8"), r.stdout
        assert origin.endswith(".bundle")

    with phase("a login, a signed call, and the repo's own ./backend.ai"):
        r = on_host(bed, login_script(BASE))
        assert r.stdout.split() == ["authenticated", "session"], r.stdout + r.stderr
        env = f"{BASE}/client/env-local-admin-api.sh"
        r = on_host(bed, f"cd {CHECKOUT} && . {env} && ./backend.ai admin agent list")
        assert r.returncode == 0 and "ALIVE" in r.stdout, r.stdout + r.stderr

    with phase("a session, with the checkout's kernel runner and its LFS files: 42"):
        r = on_host(
            bed,
            f"cd {CHECKOUT} && . {env} && ./backend.ai run --rm -c 'print(6*7)' python",
            timeout=600,
        )
        assert r.returncode == 0 and "42" in r.stdout.splitlines(), r.stdout + r.stderr

    with phase("a second provision changes nothing, in one round trip of facts"):
        r = devkit(bed, "provision", HOST, "--set", SOURCE, "--format", "json")
        assert json.loads(r.stdout)["hosts"][0]["status"] == "unchanged", r.stdout
        noop_is_one_round_trip(bed, SOURCE)

    with phase("restart --changed: a manager handler edited, the manager alone restarts"):
        manager_edit_restarts_the_manager_alone(
            bed, _SERVER, _HELLO, '"manager": __version__ + "+devkit-edit",'
        )
        assert manager_root(bed)["manager"].endswith("+devkit-edit")

    with phase("restart --changed: an edit to common/ restarts all four"):
        common = "src/ai/backend/common/__init__.py"
        r = on_host(bed, f"echo '# an edit' >> {CHECKOUT}/{common}")
        r = devkit(bed, "restart", "--changed", HOST)
        assert r.returncode == 0, r.stdout + r.stderr
        assert restarted(r.stdout) == FOUR and f"({common} changed)" in r.stdout, r.stdout
        assert status(bed)["ok"]
        r = on_host(
            bed, f"cd {CHECKOUT} && git checkout -- {common} && touch -d '-1 hour' {common}"
        )
        assert r.returncode == 0, r.stderr

    with phase("the watcher: a save is served, one that does not compile is not"):
        r = devkit(bed, "provision", HOST, "--set", SOURCE, "--set", "source.watch=true")
        assert r.returncode == 0, r.stdout + r.stderr
        edit(bed, _SERVER, "+devkit-edit", "+watched")
        serves(bed, "+watched")
        running = pids(bed)["manager"]
        edit(bed, _SERVER, "+watched", '+watched" +')  # a syntax error, saved
        log = f"{BASE}/logs/devkit-watch.log"
        deadline = time.monotonic() + 30
        while "NOT restarted" not in (text := on_host(bed, f"cat {log}").stdout):
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        assert f"manager: NOT restarted: {_SERVER}:" in text and "SyntaxError" in text, text
        assert pids(bed)["manager"] == running and manager_root(bed)["manager"].endswith("+watched")
        edit(bed, _SERVER, '+watched" +', "+devkit-edit")
        serves(bed, "+devkit-edit")
        r = devkit(bed, "provision", HOST, "--set", SOURCE)  # the watcher off again
        assert r.returncode == 0 and "devkit-watch" not in pids(bed), r.stdout + r.stderr

    with phase("sync from a clone here: a commit and an uncommitted change, both served"):
        clone = bed.dir / "laptop"
        subprocess.run(
            ["git", "clone", "-q", "--branch", "23.09", str(BUNDLE), str(clone)], check=True
        )
        on_host(bed, f"cd {CHECKOUT} && git stash -q")  # the host's edit, out of the way
        text = (clone / _SERVER).read_text()
        (clone / _SERVER).write_text(text.replace(_HELLO, '"manager": __version__ + "+synced",'))
        subprocess.run(["git", "-C", str(clone), "commit", "-qam", "feat: a commit"], check=True)
        web = clone / "src/ai/backend/web/__init__.py"
        web.write_text(web.read_text() + "# uncommitted\n")
        r = devkit(bed, "sync", HOST, cwd=clone)
        assert r.returncode == 0, r.stdout + r.stderr
        assert restarted(r.stdout) == ["manager", "webserver"], r.stdout
        assert manager_root(bed)["manager"].endswith("+synced")
        r = on_host(bed, f"cd {CHECKOUT} && git status --porcelain && git log -1 --format=%s")
        assert r.stdout.split("\n")[:2] == [" M src/ai/backend/web/__init__.py", "feat: a commit"]
        # the host's checkout back as it was: the branch's commit, and the host's own edit
        r = on_host(bed, f"cd {CHECKOUT} && git reset -q --hard origin/23.09 && git stash pop -q")
        assert r.returncode == 0, r.stdout + r.stderr

    with phase("the wheels on the same host, then the checkout again"):
        r = devkit(bed, "provision", HOST, "--wheelhouse", str(bed.wheels))
        assert r.returncode == 0, r.stdout + r.stderr
        assert manager_root(bed)["manager"] == "23.09.10"  # the released wheel's own VERSION
        r = devkit(bed, "provision", HOST, "--set", SOURCE)
        assert r.returncode == 0, r.stdout + r.stderr
        assert manager_root(bed)["manager"].endswith("+devkit-edit")  # the edit was kept

    with phase("source = local: a clone here with a commit, pushed; host edits refused"):
        clone = bed.dir / "my-backend.ai"
        git = ["git", "-C", str(clone)]
        subprocess.run(
            ["git", "clone", "-q", "--branch", "23.09", str(BUNDLE), str(clone)], check=True
        )
        text = (clone / _SERVER).read_text()
        (clone / _SERVER).write_text(
            text.replace('"manager": __version__,', '"manager": __version__ + "+local-commit",')
        )
        subprocess.run(
            [*git, "commit", "-qam", "feat(manager): say where it runs from"], check=True
        )
        r = devkit(bed, "provision", HOST, "--set", "backend_ai.source=local", cwd=clone)
        # the host's uncommitted edit to the same line: refused, both sides as they were
        assert r.returncode == 1 and "src/ai/backend/manager/server.py  (edited on src)" in r.stdout
        assert manager_root(bed)["manager"].endswith("+devkit-edit")
        assert "+local-commit" in (clone / _SERVER).read_text()
        r = on_host(bed, f"cd {CHECKOUT} && git checkout -- {_SERVER}")
        assert r.returncode == 0, r.stderr
        r = devkit(bed, "provision", HOST, "--set", "backend_ai.source=local", cwd=clone)
        assert r.returncode == 0, r.stdout + r.stderr
        pushed = (
            rf"^pushed 23\.09 \(1 new commit\(s\)\) to {CHECKOUT}: .*{_SERVER}.* changed there$"
        )
        assert re.search(pushed, r.stdout, re.M), r.stdout
        assert f"manager: restarted ({_SERVER} changed)" in r.stdout, r.stdout
        assert manager_root(bed)["manager"].endswith("+local-commit")  # restarted with it
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        r = on_host(bed, f"cd {CHECKOUT} && git rev-parse HEAD && git status --porcelain | wc -l")
        assert r.stdout.split() == [head.strip(), "0"], r.stdout
        r = devkit(
            bed,
            "provision",
            HOST,
            "--set",
            "backend_ai.source=local",
            "--format",
            "json",
            cwd=clone,
        )
        assert json.loads(r.stdout)["hosts"][0]["status"] == "unchanged", r.stdout

    # the edit loop's guarantees (issue 21), last: they leave the checkout as the branch has it
    edit_loop_on_the_real_manager(
        bed, phase, _SERVER, BUNDLE, "23.09", clone=bed.dir / "my-backend.ai"
    )
