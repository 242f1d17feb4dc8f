"""A no-op provision of a source-mode host, on a real isolated bookworm sandbox: a small stack (one
HTTP service run from a checkout of a repository here, its dev venv from the checkout's own pins,
the edit loop) rather than Backend.AI, so the host is up in a few minutes. A second provision
asks the host only the run's lock and one facts command, and that command runs nothing slow on the
host (the host's `apt-cache` is wrapped to log each call)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sourcebed import Bed, devkit, noop_is_one_round_trip, on_host, sandbox_bed

pytestmark = [pytest.mark.root, pytest.mark.ssh]

HOST = "nsrc"
STACK = """\
[stack]
name = "source-test"
description = "One HTTP service run from a checkout"

[vars]
source.repo = ""
app.port = 8311

[types]
source.repo = "string"
app.port = "port"

[checkout]
source = "{{ source.repo }}"
path = "/root/app"
venv = "dist/venv"

[services.app]
health = "python3 -c 'import urllib.request as u; u.urlopen(\\"http://127.0.0.1:{{ app.port }}/\\")'"
ports = [{ name = "http", port = "{{ app.port }}" }]

[services.app.program]
command = "/root/app/dist/venv/bin/python -m app.server {{ app.port }}"
directory = "/root/app"
environment = { PYTHONPATH = "src" }

[edit]
checkout = "/root/app"
python = "/root/app/dist/venv/bin/python"

[edit.restart]
app = ["src/app/**"]
"""
FILES = {
    "pants.toml": '[python]\ninterpreter_constraints = ["CPython==3.11.2"]\n',
    "VERSION": "1.0.0\n",
    "requirements.txt": "# the standard library only\n",
    "python.lock": "version = 1\n",
    ".gitignore": "dist/\n__pycache__/\n",
    "src/app/__init__.py": "",
    "src/app/server.py": """import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")


HTTPServer(("127.0.0.1", int(sys.argv[1])), Hello).serve_forever()
""",
}
# logs each call of the host's apt-cache, then runs it
APT_CACHE_LOG = "/tmp/apt-cache.calls"
APT_CACHE = f'#!/bin/sh\necho "$*" >>{APT_CACHE_LOG}\nexec /usr/bin/apt-cache "$@"\n'


def _repo(d: Path) -> Path:
    repo = d / "repo"
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "a small service"], check=True)
    return repo


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    with sandbox_bed(HOST, "bookworm", None, STACK) as b:
        yield b


@pytest.mark.timeout(1200)
def test_a_noop_source_provision_is_one_round_trip_of_quick_facts(bed: Bed) -> None:
    source = f"source.repo={_repo(bed.dir)}@main"
    r = devkit(bed, "provision", HOST, "--set", source, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checkout clone: changed" in r.stdout and "devvenv create: changed" in r.stdout
    wrapper = "/usr/local/bin/apt-cache"
    r = on_host(bed, f"printf %s {shlex.quote(APT_CACHE)} >{wrapper} && chmod 755 {wrapper}")
    assert r.returncode == 0, r.stderr
    devkit(bed, "provision", HOST, "--set", source, timeout=300)  # the first with the wrapper
    on_host(bed, f"rm -f {APT_CACHE_LOG}")

    noop_is_one_round_trip(bed, source)
    calls = on_host(bed, f"cat {APT_CACHE_LOG} 2>/dev/null; true").stdout
    assert calls == "", f"a no-op asked apt-cache: {calls}"
