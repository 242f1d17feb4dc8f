"""The two files the launcher writes to a host to run inside a service's own interpreter, run here
as it runs them: the import recorder as the children's `sitecustomize` (last on their PYTHONPATH)
and the warm interpreter's zygote as `PYTHON zygote.py FD PLAN -m MODULE ARGS`. Real processes,
any user."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devkit.provision.onhost.edit import record, zygote

RECORD = Path(record.__file__)
ZYGOTE = Path(zygote.__file__)


def _checkout(root: Path) -> Path:
    """A project: the package `app` (lib.py, main.py, server.py) and a module outside it."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "lib.py").write_text('TEXT = "hello"\n')
    (root / "app" / "main.py").write_text(
        "import sys, time\nimport app.lib\n"
        "if sys.argv[1:] == ['fork']:\n"
        "    import os\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        import extra\n"
        "        time.sleep(1.6)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "else:\n"
        "    time.sleep(1.6)\n"
    )
    (root / "extra.py").write_text("")
    return root


def _recorded(
    site: Path, checkout: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m app.main ARGS` in the checkout, record.py its sitecustomize (a link to it, as
    coverage names a file by where it really is)."""
    site.mkdir(exist_ok=True)
    link = site / "sitecustomize.py"
    if not link.exists():
        link.symlink_to(RECORD)
    path = os.pathsep.join([*env.pop("PYTHONPATH", "").split(os.pathsep), str(site)]).strip(
        os.pathsep
    )
    return subprocess.run(
        [sys.executable, "-m", "app.main", *args],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _records(prefix: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(prefix.parent.glob(prefix.name + ".*.json"))]


def test_a_process_records_the_checkout_modules_it_imported(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "checkout")
    prefix = tmp_path / "imports" / "web"
    prefix.parent.mkdir()
    _recorded(
        tmp_path / "site", checkout, DEVKIT_IMPORTS=str(prefix), DEVKIT_IMPORTS_ROOT=str(checkout)
    )
    [rec] = _records(prefix)
    # by file, relative to the checkout; the main module by its own name
    assert rec["files"] == {
        "app/__init__.py": "app",
        "app/lib.py": "app.lib",
        "app/main.py": "app.main",
    }
    assert rec["main"] == "app.main"
    assert "json" in rec["others"] and "app.lib" not in rec["others"]
    assert not list(prefix.parent.glob("*.tmp"))


def test_a_forked_process_records_its_own_imports(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "checkout")
    prefix = tmp_path / "imports" / "web"
    prefix.parent.mkdir()
    _recorded(
        tmp_path / "site",
        checkout,
        "fork",
        DEVKIT_IMPORTS=str(prefix),
        DEVKIT_IMPORTS_ROOT=str(checkout),
    )
    recs = _records(prefix)
    assert len(recs) == 2 and len({r["pid"] for r in recs}) == 2, recs
    child = next(r for r in recs if "extra.py" in r["files"])
    parent = next(r for r in recs if r is not child)
    assert "extra.py" not in parent["files"] and "app/lib.py" in child["files"]


def test_without_devkit_imports_it_records_nothing_and_the_projects_sitecustomize_runs(
    tmp_path: Path,
) -> None:
    checkout = _checkout(tmp_path / "checkout")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    marker = tmp_path / "theirs-ran"
    (theirs / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    # devkit's folder comes first here, so its sitecustomize is the one Python finds
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").symlink_to(RECORD)
    subprocess.run(
        [sys.executable, "-c", "import app.lib"],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{theirs}"},
        check=True,
        timeout=60,
    )
    assert marker.exists()
    assert not list(tmp_path.glob("**/*.json"))


class Zygote:
    """zygote.py started as the launcher starts it, its end of the socket here."""

    def __init__(self, checkout: Path, plan: dict[str, Any], *command: str) -> None:
        plan_path = checkout.parent / "plan.json"
        plan_path.write_text(json.dumps(plan))
        self.chan, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, str(ZYGOTE), str(theirs.fileno()), str(plan_path), *command],
            cwd=checkout,
            pass_fds=[theirs.fileno()],
            stderr=subprocess.PIPE,
            text=True,
        )
        theirs.close()
        self.buf = b""

    def answer(self) -> dict[str, Any]:
        self.chan.settimeout(60)
        while b"\n" not in self.buf:
            chunk = self.chan.recv(65536)
            assert chunk, "the zygote closed its socket"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return dict(json.loads(line))

    def close(self) -> int:
        self.chan.close()
        return self.proc.wait(timeout=30)


def _serving_app(checkout: Path) -> None:
    (checkout / "app" / "serve.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'pid': os.getpid(), 'argv': sys.argv[1:], 'name': __name__,\n"
        "    'warm': 'app.lib' in sys.modules and not hasattr(sys.modules['app.lib'], 'FRESH')}),\n"
        "    file=open(sys.argv[1], 'w'))\n"
    )


def test_the_zygote_imports_its_plan_and_forks_the_service_from_it(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "checkout")
    _serving_app(checkout)
    out = tmp_path / "served.json"
    plan = {"root": str(checkout), "modules": ["app", "app.lib", "not_a_module"]}
    z = Zygote(checkout, plan, "-m", "app.serve", str(out))
    try:
        ready = z.answer()
        assert ready["ready"] and ready["failed"] == 1, ready
        assert set(ready["loaded"]) == {"app/__init__.py", "app/lib.py"}
        z.chan.sendall(b'{"do": "fork"}\n')
        pid = z.answer()["pid"]
        deadline = time.monotonic() + 30
        while not (out.exists() and out.read_text().endswith("\n")):
            assert time.monotonic() < deadline, "the forked process never ran the module"
            time.sleep(0.05)
        # the module ran as `python -m app.serve OUT` would, with the plan's modules imported
        assert json.loads(out.read_text()) == {
            "pid": pid,
            "argv": [str(out)],
            "name": "__main__",
            "warm": True,
        }
    finally:
        assert z.close() == 0  # the launcher closed its end: the zygote ends


def test_the_zygote_refuses_a_command_that_is_not_python_m(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "checkout")
    z = Zygote(checkout, {"root": str(checkout), "modules": []}, "server.py", "8080")
    assert z.proc.wait(timeout=30) == 2
    assert z.proc.stderr is not None
    assert z.proc.stderr.read() == "devkit zygote: the command is not PYTHON -m MODULE ARGS\n"
    z.chan.close()
