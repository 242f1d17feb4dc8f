"""What the end-to-end tests check on a provisioned Backend.AI host, whichever line it runs, and how
they time their phases (tests/e2e, tests/sandbox/test_stacks.py)."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIMINGS: list[str] = []  # every table of this run, printed again in pytest's summary (conftest)

# a webserver login; the session cookie it set must be a logged-in session; with an argument, GraphQL
# through the webserver must reach the manager (26.x's gateway is switched off): prints two or three words
LOGIN = """
import http.cookiejar, json, sys, urllib.request
creds = json.load(open(sys.argv[1]))
jar = http.cookiejar.CookieJar()
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
def post(path, body):
    req = urllib.request.Request("http://127.0.0.1:8090" + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    return json.loads(web.open(req, timeout=10).read())
a = post("/server/login", {"username": creds["username"], "password": creds["password"]})
print("authenticated" if a.get("authenticated") is True else a)
b = post("/server/login-check", {})
print("session" if b.get("authenticated") is True else b)
if sys.argv[2:] == ["gql"]:
    q = "{ agent_list(limit: 10, offset: 0) { items { id status } } }"
    c = post("/func/admin/gql", {"query": q})
    items = ((c.get("data") or {}).get("agent_list") or {}).get("items") or []
    print("gql" if any(i["status"] == "ALIVE" for i in items) else c)
"""


def login_script(base: str | Path, graphql: bool = False) -> str:
    """The shell command that runs LOGIN on the host with the stack's admin credentials."""
    creds = shlex.quote(f"{base}/client/admin-login.json")
    return f"python3 - {creds}{' gql' if graphql else ''} <<'EOF'\n{LOGIN}\nEOF"


def exposed(ss_listening: str) -> list[str]:
    """The lines of `ss -Hltnp` that listen beyond loopback, but for the host's own sshd (how
    devkit reaches it)."""
    return [
        line
        for line in ss_listening.splitlines()
        if not line.split()[3].startswith(("127.", "[::1]", "[::ffff:127."))
        and '"sshd"' not in line
    ]


@contextlib.contextmanager
def phases(title: str, out: Path) -> Iterator[Callable[[str], Any]]:
    """`with phases(...) as phase:` then `with phase("name"):` records each phase's wall time; the
    table is printed in pytest's summary and written to `out`."""
    times: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            times.append((name, time.monotonic() - start))

    try:
        yield timed
    finally:
        width = max([44, *(len(name) for name, _ in times)])
        lines = ["", f"{title} (wall seconds):"]
        lines += [f"  {name:<{width}} {secs:7.1f}" for name, secs in times]
        lines.append(f"  {'total':<{width}} {sum(s for _, s in times):7.1f}")
        text = "\n".join(lines)
        TIMINGS.append(text)
        print(text)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text.lstrip() + "\n")


def devkit_in(
    where: Path, env: dict[str, str], *args: str, timeout: float, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`devkit ARGS` run in `where` (a test's folder or a clone), as a user would."""
    r = subprocess.run(
        [sys.executable, "-m", "devkit", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert r.returncode == 0, f"devkit {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r
