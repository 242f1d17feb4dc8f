"""Backend.AI from source: a cold source-mode provision with a warm pip cache and its no-op re-run;
and edit-to-serving on the real manager (a save of its `GET /` handler to the first answer with the
edit) through `devkit restart --changed`, the watcher and `devkit sync`, against the floor: the
manager's own start-to-healthy (supervisord starts it, the first answer comes back). Side by side
in one run.

Root only: one isolated Debian 12 sandbox host (bench/.work/source/) with Backend.AI's 23.09 branch
from ../shared/fixtures/backend.ai-23.09.bundle as the contributor's remote. A poller inside the
host's network namespace asks the manager every 5 ms and stamps each new answer with this machine's
clock, the one the benchmark saves files by (the host's checkout is a directory of its root
filesystem, reached from here through /proc/<its init>/root).

Usage: python bench/bench_source.py [--rounds N] [--keep] [--no-write] [--bundle PATH]
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
    REPO,
    WORK,
    Poller,
    default_devkit_python,
    devkit_env,
    git_head,
    load,
    log,
    machine,
    today,
    write_section,
)

sys.path.insert(0, str(REPO))
from devkit.provision.onhost.edit import services as edit_services

HEADING = "Backend.AI from source: cold provision, no-op, edit-to-serving"
STATE = WORK / "source"
HOST = "bs"
BUNDLE = REPO.parent / "shared" / "fixtures" / "backend.ai-23.09.bundle"
CHECKOUT = "/root/backend.ai"
BASE = f"/var/lib/devkit/{HOST}/backend.ai"
SERVER = "src/ai/backend/manager/server.py"
HELLO = '"manager": __version__'


def run(cmd: list[str], env: dict[str, str], check: bool = True, cwd: Path = STATE) -> float:
    """Run it; its wall seconds."""
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if check and r.returncode != 0:
        sys.exit(f"[bench] failed: {' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return took


def box() -> dict:
    return json.loads((STATE / "state" / "sandbox" / HOST / "sandbox.json").read_text())


def on_host(env: dict[str, str], script: str) -> None:
    ssh = ["ssh", "-F", env["DEVKIT_SSH_CONFIG"], HOST, script]
    subprocess.run(ssh, env=env, check=True, capture_output=True)


def mark(path: Path, value: str) -> float:
    """Save the manager's hello handler answering `<version>+<value>`; when it was saved."""
    text = path.read_text()
    start = text.index(HELLO) + len(HELLO)
    end = text.index(",", start)
    path.write_text(text[:start] + f' + "+{value}"' + text[end:])
    return time.time()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running")
    ap.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    ap.add_argument("--bundle", default=str(BUNDLE), help="Backend.AI's 23.09 branch, a bundle")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("[bench] needs root (the sandbox host has its own namespaces)")
    bundle = Path(args.bundle)
    if not bundle.is_file():
        sys.exit(f"[bench] no {bundle}")
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    (STATE / "pyproject.toml").write_text("[tool.devkit]\n")
    env = {**devkit_env(STATE), "DEVKIT_WHEEL_CACHE": str(WORK / "wheel-cache")}
    devkit = [default_devkit_python(), "-m", "devkit"]
    source = ["--set", f"backend_ai.source={bundle}@23.09"]
    where = machine()
    sam: dict[str, list[float]] = {
        k: [] for k in ("noop", "floor", "changed", "changed_cmd", "watch", "sync", "sync_cmd")
    }
    poller = None
    try:
        run([*devkit, "sandbox", "up", HOST, "--release", "bookworm"], env)
        log("a first provision from the bundle (it fills the host's pip cache)")
        first = run([*devkit, "provision", HOST, *source], env)
        log(f"  {first:.1f} s; now purged, the checkout removed, and again")
        run([*devkit, "teardown", HOST, "--purge"], env)
        on_host(env, f"rm -rf {CHECKOUT}")
        cold = run([*devkit, "provision", HOST, *source], env)
        log(f"  cold with a warm pip cache: {cold:.1f} s")
        run([*devkit, "provision", HOST, *source], env)  # warm-up of the no-op
        for _ in range(args.rounds + 2):
            sam["noop"].append(run([*devkit, "provision", HOST, *source], env))
        root = Path(f"/proc/{box()['init']}/root")  # the host's root filesystem, from here
        checkout = root / CHECKOUT.lstrip("/")
        laptop = STATE / "laptop"
        subprocess.run(["git", "clone", "-q", "-b", "23.09", str(bundle), str(laptop)], check=True)
        poller = Poller(f"/proc/{box()['init']}/ns/net", "http://127.0.0.1:8091/", ["manager"])
        poller.until(lambda manager: True, timeout=120)
        rpc = edit_services.supervisor(str(root / BASE.lstrip("/") / "run" / "supervisor.sock"))

        def floor(n: int) -> None:
            rpc.stopProcess("manager", True)
            poller.drain()
            t0 = time.time()
            rpc.startProcess("manager", False)
            t1, _ = poller.until(lambda manager: True)
            sam["floor"].append(t1 - t0)

        def changed(n: int) -> None:
            value = f"changed-{n}"
            poller.drain()
            t0 = mark(checkout / SERVER, value)
            took = run([*devkit, "restart", "--changed", HOST], env)
            t1, _ = poller.until(lambda manager: manager.endswith(value))
            sam["changed"].append(t1 - t0)
            sam["changed_cmd"].append(took)

        def watch(n: int) -> None:
            value = f"watched-{n}"
            poller.drain()
            t0 = mark(checkout / SERVER, value)
            t1, _ = poller.until(lambda manager: manager.endswith(value))
            sam["watch"].append(t1 - t0)

        def sync(n: int) -> None:
            value = f"synced-{n}"
            poller.drain()
            t0 = mark(laptop / SERVER, value)  # uncommitted, in the clone here
            took = run([*devkit, "sync", HOST], env, cwd=laptop)
            t1, _ = poller.until(lambda manager: manager.endswith(value))
            sam["sync"].append(t1 - t0)
            sam["sync_cmd"].append(took)

        # the floor and restart --changed interleaved (each edit undone on the host after it);
        # then sync, whose edits stay on the host (sync refuses to overwrite one made there);
        # then the watcher, on its own
        for n in range(-1, args.rounds):  # -1: the warm-up, not counted
            for case in (floor, changed) if n % 2 else (changed, floor):
                case(n)
                on_host(env, f"cd {CHECKOUT} && git checkout -q -- {SERVER}")
                time.sleep(0.5)
            if n < 0:
                for k in ("floor", "changed", "changed_cmd"):
                    sam[k].clear()
            log(f"floor and restart --changed: round {n + 2}/{args.rounds + 1} done")
        for n in range(-1, args.rounds):
            sync(n)
            time.sleep(0.5)
        del sam["sync"][0], sam["sync_cmd"][0]
        run([*devkit, "provision", HOST, *source, "--set", "source.watch=true"], env)
        time.sleep(2)
        for n in range(-1, args.rounds):
            watch(n)
            time.sleep(1)
        del sam["watch"][0]
    finally:
        if poller is not None:
            poller.stop()
        if not args.keep:
            run([*devkit, "sandbox", "down", HOST], env, check=False)
    f = statistics.median(sam["floor"])

    def med(k: str) -> str:
        xs = sam[k]
        return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"

    over = {k: statistics.median(sam[k]) - f for k in ("changed", "watch", "sync")}
    noop = statistics.median(sam["noop"])
    body = f"""Measured {today()} by `bench/bench_source.py` (Backend.AI's 23.09 branch from its bundle, on one isolated Debian 12 sandbox host; {args.rounds} rounds of each edit path after a warm-up: the floor and `restart --changed` interleaved, then `sync`, then the watcher; seconds from the save to the first `GET /` answer of the manager with the edit, stamped by a poller in the host's network namespace asking every 5 ms).

Machine: {where}; at the end {load()} (other sessions share this machine). devkit {git_head()}.

| what | seconds |
|---|---|
| first provision from the bundle (apt, clone, dev venv from PyPI through the proxy, LFS files, image, services) | {first:.1f} |
| cold provision with a warm pip cache (after `teardown --purge` and the checkout removed) | {cold:.1f} |
| no-op re-run, median (min–max) of {len(sam["noop"])} | {med("noop")} |

No-op target (issue 10) under 1 s: {noop:.2f} s, **{"met" if noop < 1 else "MISSED"}**.

| edit path | edit-to-serving, median s (min–max) | over the floor | the command alone |
|---|---|---|---|
| floor: the manager's own start-to-healthy (supervisord starts it → first answer) | {med("floor")} | – | – |
| `devkit restart --changed` (save on the host, then the command) | {med("changed")} | {over["changed"]:+.2f} | {med("changed_cmd")} |
| the watcher (save on the host, no command) | {med("watch")} | {over["watch"]:+.2f} | – |
| `devkit sync` (an uncommitted save in a clone here, then the command) | {med("sync")} | {over["sync"]:+.2f} | {med("sync_cmd")} |

Targets (issue 10):
- `restart --changed`: {over["changed"]:+.2f} s over the floor (within 1 s): **{"met" if over["changed"] <= 1 else "MISSED"}**
- the watcher: {over["watch"]:+.2f} s (within 1 s): **{"met" if over["watch"] <= 1 else "MISSED"}**
- `sync`: {over["sync"]:+.2f} s (within 2 s): **{"met" if over["sync"] <= 2 else "MISSED"}**
"""
    if not args.no_write:
        write_section(HEADING, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
