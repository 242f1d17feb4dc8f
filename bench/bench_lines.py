"""Backend.AI's two release lines from wheels: a cold `devkit provision` of the current line (26.x,
Python 3.13) on a fresh trixie sandbox against 23.9.10 (Python 3.11) on a fresh bookworm one, each
alone, then the no-op re-run of each. Root only.

Cold = a new isolated sandbox on the machine's cached Debian root (nothing of the stack in it: apt
installs PostgreSQL, Redis, etcd and docker.io through devkit's proxy) and an empty wheel cache for
the wheels fetched on this machine (23.9.10's, uploaded); the current line's venv is installed by
the sandbox's own pip (its cache starts empty), as `wheels = "auto"` does for a Python this machine
does not have. This machine's own pip HTTP cache is left as it is.
Usage: python bench/bench_lines.py [--current 26.9.6] [--runs N] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    WORK,
    default_devkit_python,
    devkit_env,
    down_sandboxes,
    git_head,
    load,
    log,
    machine,
    table,
    today,
    write_section,
)

HERE = WORK / "lines"
TARGET = 1.0  # seconds: a no-op re-provision (DESIGN.md)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    r = subprocess.run(argv, env=env, cwd=HERE, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"[bench] {' '.join(argv[2:])} failed:\n{r.stdout}{r.stderr}")
    return took, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--current", default="26.9.6", help="the current line's version (default 26.9.6)"
    )
    ap.add_argument("--runs", type=int, default=7, help="no-op rounds per host (default 7)")
    ap.add_argument("--no-write", action="store_true", help="print instead of writing RESULTS.md")
    ap.add_argument("--devkit-python", default=default_devkit_python())
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("[bench] needs root (isolated sandboxes)")
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    (HERE / "pyproject.toml").write_text(
        '[tool.devkit.provision]\nstack = "backend.ai"\n\n'
        f'[tool.devkit.hosts.tx.vars]\nbackend_ai.version = "{args.current}"\n'
    )
    env = devkit_env(HERE)
    env["DEVKIT_WHEEL_CACHE"] = str(HERE / "wheels")  # empty: the cold run fetches them
    dk = [args.devkit_python, "-m", "devkit"]
    at_start = machine()
    hosts = {"bw": ("bookworm", "23.9.10"), "tx": ("trixie", args.current)}
    cold: dict[str, float] = {}
    noop: dict[str, list[float]] = {h: [] for h in hosts}
    try:
        for name, (release, version) in hosts.items():
            run([*dk, "sandbox", "up", name, "--release", release], env)
            log(f"{name}: cold provision of Backend.AI {version} on {release}")
            cold[name], out = run([*dk, "provision", name, "--format", "json"], env)
            assert json.loads(out)["hosts"][0]["status"] == "changed", out
        for i in range(args.runs + 1):  # the first round warms the ssh and Python caches
            for name in hosts:
                took, out = run([*dk, "provision", name, "--format", "json"], env)
                assert json.loads(out)["hosts"][0]["status"] == "unchanged", out
                if i:
                    noop[name].append(took)
    finally:
        down_sandboxes(dk, env)

    def cell(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"

    rows = [
        [
            f"Backend.AI {version} on {release} (Python {'3.11' if name == 'bw' else '3.13'})",
            f"{cold[name]:.1f}",
            cell(noop[name]),
            "**met**" if max(noop[name]) < TARGET else "**NOT met**",
        ]
        for name, (release, version) in hosts.items()
    ]
    header = [
        "line, sandbox",
        "cold provision s",
        "no-op re-run s, median (min–max)",
        "no-op < 1 s",
    ]
    text = f"""Measured {today()} by `bench/bench_lines.py` (one cold provision per line, each alone; {args.runs} no-op rounds after one warm-up; wall seconds of the whole `devkit provision` process).

Machine: {at_start}; at the end {load()}; devkit git {git_head()}.

Cold = a new isolated sandbox on the cached Debian root, nothing of the stack in it: apt installs PostgreSQL, Redis, etcd and docker.io (and Debian 13's docker-cli) through devkit's proxy; 23.9.10's wheels are fetched on this machine into an empty wheel cache and uploaded (this machine runs Python 3.11 too); the current line's venv is installed by the sandbox's own pip from PyPI through the proxy (an empty pip cache; this machine's Python 3.11 cannot build the 3.13 sdists). Then every init step (schema, fixture, etcd, TLS certificate for the current line) and all eight services started, each healthy before the next.

{table(header, rows)}
"""
    if args.no_write:
        print(text)
    else:
        write_section("Backend.AI release lines: cold provision and no-op", text)


if __name__ == "__main__":
    main()
