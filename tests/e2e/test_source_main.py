"""The current Backend.AI line run from the contributor's checkout, end to end: the real main branch
(26.8.0rc1, the bundle in ../shared/fixtures, as the contributor's remote) on an isolated Debian 13
sandbox host, with no version set by hand: the branch's VERSION decides the release line. Its dev
venv from its uv lock, its LFS files from the released wheels (the rest named), the four services
from the checkout, a login and a signed call, a no-op re-run and one `restart --changed`, the
edit loop's guarantees (an overlapped restart refusing nothing, a crash on start, import-based
restart sets, the warm start, sync --watch, a no-op in one round trip); and each
branch refused before anything changes on a host without its Python (23.09 on trixie, main on
bookworm). tests/e2e/test_source.py runs the rest of the edit loop on the 23.09 branch."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.checks import login_script, phases
from tests.e2e.sourcebed import (
    CHECKOUT,
    FIXTURES,
    ROOT,
    Bed,
    devkit,
    edit_loop_on_the_real_manager,
    manager_edit_restarts_the_manager_alone,
    manager_root,
    need,
    noop_is_one_round_trip,
    on_host,
    sandbox_bed,
    status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.ssh]

BUNDLE = FIXTURES / "backend.ai-main.bundle"
OLD = FIXTURES / "backend.ai-23.09.bundle"
HOST = "srcmain"
VERSION = "26.8.0rc1"  # main's VERSION in the bundle
SOURCE = f"backend_ai.source={BUNDLE}@main"
# main moved the manager's `GET /` handler out of server.py
_HANDLER = "src/ai/backend/manager/api/rest/app.py"
_HELLO = '"manager": __version__,'
# the ai.backend packages each service's server module imports (as its process does at start),
# printed by the checkout's own interpreter
_IMPORTS = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({m.split(".")[2] for m in sys.modules if m.startswith("ai.backend.") and m.count(".") >= 2})))
"""
_MODULES = {
    "manager": "ai.backend.manager.server",
    "agent": "ai.backend.agent.server",
    "storage-proxy": "ai.backend.storage.server",
    "webserver": "ai.backend.web.server",
}


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    need(OLD)
    with sandbox_bed(HOST, "trixie", BUNDLE) as b:
        yield b


@pytest.fixture(scope="module")
def phase() -> Iterator[Callable[[str], Any]]:
    out = ROOT / ".cache" / "source-main-timings.txt"
    with phases("backend.ai main from source on trixie, e2e phase timings", out) as timed:
        yield timed


def nothing_there(bed: Bed) -> None:
    """Neither the checkout nor the stack's base dir on the host: a refusal changed nothing."""
    r = on_host(bed, f"test ! -e {CHECKOUT} && test ! -e {bed.base} && echo none")
    assert r.stdout.strip() == "none", r.stdout + r.stderr


@pytest.mark.timeout(3600)
def test_backendai_main_from_its_branch_on_trixie(bed: Bed, phase: Callable[[str], Any]) -> None:
    with phase("the 23.09 branch on this trixie host: refused, nothing changed"):
        r = devkit(bed, "provision", HOST, "--set", f"backend_ai.source={OLD}@23.09")
        assert r.returncode == 1, r.stdout + r.stderr
        assert (
            "checkout: the checkout (VERSION 23.09.11) needs Python 3.11 (its pants.toml asks "
            "for CPython 3.11.8); Debian GNU/Linux 13 (trixie) has Python 3.13" in r.stdout
        ), r.stdout
        assert "devkit sandbox up NAME --release bookworm" in r.stdout
        nothing_there(bed)

    with phase("provision main from the bundle (apt, dev venv, LFS, services)"):
        r = devkit(bed, "provision", HOST, "--set", SOURCE)
        assert r.returncode == 0, r.stdout + r.stderr
        # the branch's own version, with no --set backend_ai.version: the line followed it
        assert f"Backend.AI {VERSION} from source on {HOST}: the checkout {CHECKOUT}" in r.stdout
        # the LFS files no released wheel carries, named with what they break
        for name in ("all-smi", "bssh"):
            line = f"  src/ai/backend/runner/{name}.x86_64.bin: compute sessions:"
            assert line in r.stdout, r.stdout

    with phase("status: every service healthy, from the checkout; its LFS files filled"):
        st = status(bed)
        assert st["ok"], st
        assert manager_root(bed)["manager"] == VERSION
        r = on_host(
            bed,
            f"cd {CHECKOUT} && git rev-parse --abbrev-ref HEAD && git remote get-url origin && "
            "git status --porcelain | wc -l && ls dist/export/python/virtualenvs/python-default && "
            f"head -c 4 src/ai/backend/runner/su-exec.x86_64.bin | od -An -c | tr -d ' ' && "
            f"grep -c . {bed.base}/bin/python >/dev/null && grep -q 'cd {CHECKOUT}' {bed.base}/bin/python && echo wrapped",
        )
        branch, origin, dirty, venv, elf, wrapped = r.stdout.split()
        # filled from 26.8.0's wheels, and git sees the content as the same blob: a clean status
        assert (branch, dirty, venv, elf, wrapped) == ("main", "0", "3.13.7", "177ELF", "wrapped")
        assert origin.endswith(".bundle"), r.stdout  # the bundle, as sent to the host

    with phase("a login, GraphQL through the webserver, a signed call"):
        r = on_host(bed, login_script(bed.base, graphql=True))
        assert r.stdout.split() == ["authenticated", "session", "gql"], r.stdout + r.stderr
        env = f"{bed.base}/client/env-local-admin-api.sh"
        r = on_host(bed, f"cd {CHECKOUT} && . {env} && ./backend.ai admin agent list")
        assert r.returncode == 0 and "ALIVE" in r.stdout, r.stdout + r.stderr
        # the checkout's accelerator plugins (found from its BUILD files) stay unloaded: their
        # slots would make every agent heartbeat fail in the manager
        assert "cpu:" in r.stdout and ".device" not in r.stdout, r.stdout

    with phase("each service imports only packages its [edit] group restarts it for"):
        rules = json.loads(on_host(bed, f"cat {bed.base}/supervisor/edit.json").stdout)
        for service, module in _MODULES.items():
            r = on_host(bed, f"{bed.base}/bin/python - {module} <<'EOF'\n{_IMPORTS}\nEOF")
            assert r.returncode == 0, r.stderr[-2000:]
            packages = json.loads(r.stdout.strip().splitlines()[-1])
            assert module.split(".")[2] in packages
            missing = [
                p for p in packages if f"src/ai/backend/{p}/**" not in rules["services"][service]
            ]
            assert missing == [], f"{service} imports {missing}, which do not restart it"

    with phase("a second provision changes nothing, in one round trip of facts"):
        r = devkit(bed, "provision", HOST, "--set", SOURCE, "--format", "json")
        assert json.loads(r.stdout)["hosts"][0]["status"] == "unchanged", r.stdout
        noop_is_one_round_trip(bed, SOURCE)

    with phase("restart --changed: a manager handler edited, the manager alone restarts"):
        manager_edit_restarts_the_manager_alone(
            bed, _HANDLER, _HELLO, '"manager": __version__ + "+devkit-edit",'
        )
        assert manager_root(bed)["manager"] == f"{VERSION}+devkit-edit"

    edit_loop_on_the_real_manager(bed, phase, _HANDLER, BUNDLE, "main")

    with phase("main on a bookworm host: refused, nothing changed"):
        bw = bed._replace(host=f"{HOST}-bw")
        r = devkit(bw, "sandbox", "up", bw.host, "--release", "bookworm", timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        try:
            r = devkit(bw, "provision", bw.host, "--set", SOURCE)
            assert r.returncode == 1, r.stdout + r.stderr
            assert (
                f"checkout: the checkout (VERSION {VERSION}) needs Python 3.13 (its pants.toml "
                "asks for CPython 3.13.7); Debian GNU/Linux 12 (bookworm) has Python 3.11"
                in r.stdout
            ), r.stdout
            assert "devkit sandbox up NAME --release trixie" in r.stdout
            nothing_there(bw)
        finally:
            devkit(bw, "sandbox", "down", bw.host, timeout=300)
