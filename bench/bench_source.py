"""Backend.AI from source (issue 21): the no-op re-run of a source-mode provision, and edit-to-
serving on the real manager (a save of its `GET /` handler to the first answer with the edit)
through the watcher, `devkit restart --changed`, `devkit sync` and `devkit sync --watch`, against
the floor: the manager's own start-to-healthy, cold (supervisord starts it, the first answer comes
back). Side by side in one run; and the requests that failed while each edit path restarted it.

Root only: one isolated sandbox host (bench/.work/source-LINE/) with Backend.AI's main (Debian 13)
or 23.09 branch (Debian 12) from ../shared/fixtures as the contributor's remote. A poller inside the
host's network namespace asks the manager every 5 ms, stamps each new answer with this machine's
clock, the one the benchmark saves files by (the host's checkout is a directory of its root
filesystem, reached from here through /proc/<its init>/root), and counts each failed request.
Before each edit the benchmark waits (up to 2 min) for the manager's warm interpreter, as a
contributor's next save would find it; each edit says whether it was served warm.

Usage: python bench/bench_source.py [--line main|23.09] [--rounds N] [--cold] [--keep] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

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
from devkit.provision.onhost.edit import launch as edit_launch
from devkit.provision.onhost.edit import services as edit_services


class Line(NamedTuple):
    bundle: str
    branch: str
    release: str
    debian: str
    handler: str  # the manager's `GET /` handler


LINES = {
    "main": Line(
        "backend.ai-main.bundle", "main", "trixie", "13", "src/ai/backend/manager/api/rest/app.py"
    ),
    "23.09": Line(
        "backend.ai-23.09.bundle", "23.09", "bookworm", "12", "src/ai/backend/manager/server.py"
    ),
}
FIXTURES = REPO.parent / "shared" / "fixtures"
HOST = "bs"
CHECKOUT = "/root/backend.ai"
BASE = f"/var/lib/devkit/{HOST}/backend.ai"
HELLO = re.compile(r'"manager": __version__[^,\n]*,')
PATHS = ("watch", "changed", "sync", "syncwatch")


def run(
    cmd: list[str], env: dict[str, str], check: bool = True, cwd: Path | None = None
) -> tuple[float, str]:
    """Run it; its wall seconds and its output."""
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if check and r.returncode != 0:
        sys.exit(f"[bench] failed: {' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return took, r.stdout


def on_host(env: dict[str, str], script: str) -> None:
    ssh = ["ssh", "-F", env["DEVKIT_SSH_CONFIG"], HOST, script]
    subprocess.run(ssh, env=env, check=True, capture_output=True)


def mark(path: Path, value: str) -> float:
    """Save the manager's hello handler answering `<version>+<value>`; when it was saved."""
    text, n = HELLO.subn(f'"manager": __version__ + "+{value}",', path.read_text())
    assert n == 1, f"the handler moved: {path}"
    path.write_text(text)
    return time.time()


def pct(xs: list[float], p: float) -> float:
    """The nearest-rank percentile, as `devkit status` reports it."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--line", choices=sorted(LINES), default="main")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--cold", action="store_true", help="also a cold provision (warm pip cache)")
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running")
    ap.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = ap.parse_args()
    line = LINES[args.line]
    if os.geteuid() != 0:
        sys.exit("[bench] needs root (the sandbox host has its own namespaces)")
    bundle = FIXTURES / line.bundle
    if not bundle.is_file():
        sys.exit(f"[bench] no {bundle}")
    state = WORK / f"source-{args.line}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    (state / "pyproject.toml").write_text("[tool.devkit]\n")
    # devkit from byte-code caches, as an installed one runs (this machine's environment sets
    # PYTHONDONTWRITEBYTECODE=1, which would compile devkit's editable source on every command)
    env = {k: v for k, v in devkit_env(state).items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["DEVKIT_WHEEL_CACHE"] = str(WORK / "wheel-cache")
    devkit = [default_devkit_python(), "-m", "devkit"]
    source = ["--set", f"backend_ai.source={bundle}@{line.branch}"]
    where = machine()
    sam: dict[str, list[float]] = {
        k: [] for k in ("noop", "floor", *PATHS, "changed_cmd", "sync_cmd")
    }
    warm: dict[str, list[bool]] = {k: [] for k in PATHS}
    failed: dict[str, int] = dict.fromkeys(PATHS, 0)
    cold = 0.0
    poller = None
    watcher = None
    try:
        run([*devkit, "sandbox", "up", HOST, "--release", line.release], env, cwd=state)
        log("a first provision from the bundle")
        first, _ = run([*devkit, "provision", HOST, *source], env, cwd=state)
        log(f"  {first:.1f} s")
        if args.cold:
            run([*devkit, "teardown", HOST, "--purge"], env, cwd=state)
            on_host(env, f"rm -rf {CHECKOUT}")
            cold, _ = run([*devkit, "provision", HOST, *source], env, cwd=state)
            log(f"  cold with a warm pip cache: {cold:.1f} s")
        run([*devkit, "provision", HOST, *source], env, cwd=state)  # warm-up of the no-op
        for _ in range(args.rounds):
            sam["noop"].append(run([*devkit, "provision", HOST, *source], env, cwd=state)[0])
        log(f"no-op: median {statistics.median(sam['noop']):.2f} s")
        init = json.loads((state / "state" / "sandbox" / HOST / "sandbox.json").read_text())["init"]
        root = Path(f"/proc/{init}/root")  # the host's root filesystem, from here
        checkout = root / CHECKOUT.lstrip("/")
        base = str(root / BASE.lstrip("/"))
        laptop = state / "laptop"
        git = ["git", "clone", "-q", "-b", line.branch, str(bundle), str(laptop)]
        subprocess.run(git, check=True)
        poller = Poller(f"/proc/{init}/ns/net", "http://127.0.0.1:8091/", ["manager"])
        poller.until(lambda manager: True, timeout=300)
        rpc = edit_services.supervisor(base + "/run/supervisor.sock")
        latency = Path(base) / "state" / "edit-latency.json"

        never: list[bool] = []  # once not ready in 2 min: no more waiting for it

        def warm_ready() -> None:
            end = time.monotonic() + 120
            while not never and time.monotonic() < end:
                try:
                    if (edit_launch.ask(base, "manager", {"do": "status"}).get("warm") or {}).get(
                        "ready"
                    ):
                        return
                except OSError:
                    pass
                time.sleep(0.5)
            never.append(True)

        def recorded() -> list[dict]:
            try:
                return list(json.loads(latency.read_text()).get("manager", []))
            except (OSError, ValueError):
                return []

        def edit(
            path: str,
            n: int,
            value: str,
            saved: Path,
            cmd: list[str] | None = None,
            cwd: Path = state,
        ) -> None:
            """One edit through one path: edit-to-serving, warm or not, failed requests."""
            warm_ready()
            before, fails = len(recorded()), poller.failed
            poller.drain()
            t0 = mark(saved, value)
            if cmd is not None:
                took, _ = run(cmd, env, cwd=cwd)
                sam[f"{path}_cmd"].append(took)
            t1, _ = poller.until(lambda manager: manager.endswith(value), timeout=180)
            end = time.monotonic() + 15
            while len(recorded()) <= before and time.monotonic() < end:
                time.sleep(0.2)
            time.sleep(2)  # the old process retires after the new one serves
            rows = recorded()
            if n >= 0:  # -1: the warm-up, not counted
                sam[path].append(t1 - t0)
                warm[path].append(len(rows) > before and "warm" in str(rows[-1].get("how")))
                failed[path] += poller.failed - fails
            how = " warm" if warm[path][-1:] == [True] else ""
            log(f"{path} {n}: {t1 - t0:.2f} s{how}, {poller.failed - fails} failed requests")

        def floor(n: int) -> None:
            rpc.stopProcess("manager", True)
            poller.drain()
            t0 = time.time()
            rpc.startProcess("manager", False)
            t1, _ = poller.until(lambda manager: True, timeout=180)
            if n >= 0:
                sam["floor"].append(t1 - t0)
            log(f"floor {n}: {t1 - t0:.2f} s")

        restart = [*devkit, "restart", "--changed", HOST]
        # the floor and restart --changed interleaved (the edit kept, as a contributor's next
        # save keeps it: the warm interpreter leaves a file edited out); then the edit undone and
        # sync, whose edits stay on the host (sync refuses to overwrite one made there); then
        # sync --watch; then the watcher
        for n in range(-1, args.rounds):
            for case in ("floor", "changed") if n % 2 else ("changed", "floor"):
                if case == "floor":
                    floor(n)
                else:
                    edit("changed", n, f"changed-{n}", checkout / line.handler, restart)
        on_host(env, f"cd {CHECKOUT} && git checkout -q -- {line.handler}")
        run(restart, env, cwd=state)
        for n in range(-1, args.rounds):
            sync = [*devkit, "sync", HOST]
            edit("sync", n, f"synced-{n}", laptop / line.handler, sync, cwd=laptop)
        watcher = subprocess.Popen(
            [*devkit, "sync", "--watch", HOST],
            cwd=laptop,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert watcher.stdout is not None
        ready = threading.Event()

        def follow() -> None:
            for out in watcher.stdout:  # type: ignore[union-attr]
                if "nothing to push" in out or "pushed" in out:
                    ready.set()

        threading.Thread(target=follow, daemon=True).start()
        ready.wait(180)
        for n in range(-1, args.rounds):
            edit("syncwatch", n, f"sync-watched-{n}", laptop / line.handler)
        watcher.send_signal(2)
        watcher.wait(60)
        watcher = None
        run([*devkit, "provision", HOST, *source, "--set", "source.watch=true"], env, cwd=state)
        time.sleep(2)
        for n in range(-1, args.rounds):
            edit("watch", n, f"watched-{n}", checkout / line.handler)
        _, st = run([*devkit, "status", HOST, "--format", "json"], env, check=False, cwd=state)
        try:
            services = json.loads(st).get("services") or []
        except (ValueError, AttributeError):
            services = []  # the table is written all the same
        status = next((s.get("edit") for s in services if s.get("service") == "manager"), None)
    finally:
        if watcher is not None:
            watcher.kill()
        if poller is not None:
            poller.stop()
        if not args.keep:
            run([*devkit, "sandbox", "down", HOST], env, check=False, cwd=state)
    load_end = load()
    f = statistics.median(sam["floor"])

    def cell(k: str) -> str:
        xs = sam[k]
        return f"{statistics.median(xs):.2f} / {pct(xs, 95):.2f} ({min(xs):.2f}–{max(xs):.2f})"

    p50 = {k: statistics.median(sam[k]) for k in PATHS}
    noop = statistics.median(sam["noop"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def row(k: str, what: str, cmd: str = "") -> str:
        took = cell(cmd) if cmd else "–"
        w = f"{sum(warm[k])}/{len(warm[k])}"
        return f"| {what} | {cell(k)} | {p50[k] - f:+.2f} | {w} | {failed[k]} | {took} |"

    st_line = (
        f"last {status['last']:.2f} s, p50 {status['p50']:.2f}, p95 {status['p95']:.2f} over "
        f"{status['count']} edits"
        if status
        else "none shown"
    )
    cold_row = (
        f"| cold provision with a warm pip cache (after `teardown --purge`) | {cold:.1f} |\n"
        if args.cold
        else ""
    )
    body = f"""Measured {today()} by `bench/bench_source.py --line {args.line}` (Backend.AI's {line.branch} branch from its bundle, on one isolated Debian {line.debian} sandbox host; {args.rounds} rounds of each edit path after a warm-up: the floor and `restart --changed` interleaved, then `sync`, then `sync --watch`, then the watcher; seconds from the save to the first `GET /` answer of the manager with the edit, stamped by a poller in the host's network namespace asking every 5 ms, which also counts every request that failed from the save until 2 s after the edit was served; before each edit the bench waits for the manager's warm interpreter, as a later save would find it).

Machine: {where}, at the end {load_end} (other sessions share this machine). devkit {git_head()}, from byte-code caches (PYTHONDONTWRITEBYTECODE unset).

| what | seconds |
|---|---|
| first provision from the bundle | {first:.1f} |
{cold_row}| no-op re-run, p50 / p95 (min–max) of {len(sam["noop"])} | {cell("noop")} |

| edit path | edit-to-serving, p50 / p95 (min–max) s | p50 over the floor | served warm | failed requests | the command alone |
|---|---|---|---|---|---|
| floor: the manager's own start-to-healthy, cold (supervisord starts it → first answer) | {cell("floor")} | – | – | – | – |
{row("watch", "the watcher (save on the host, no command)")}
{row("changed", "`devkit restart --changed` (save on the host, then the command)", "changed_cmd")}
{row("sync", "`devkit sync` (an uncommitted save in a clone here, then the command)", "sync_cmd")}
{row("syncwatch", "`devkit sync --watch` running (a save in a clone here, no command)")}

`devkit status` for the manager at the end (the edit loop's own record, save to serving): {st_line}.

Targets (issue 21):
- no-op source provision < 0.5 s: {noop:.2f} s, **{verdict(noop < 0.5)}**
- the watcher ≤ the floor: {p50["watch"]:.2f} s vs {f:.2f} s, **{verdict(p50["watch"] <= f)}**; stretch ≤ 0.5 x the floor ({0.5 * f:.2f} s): **{verdict(p50["watch"] <= 0.5 * f)}**
- `restart --changed` ≤ floor + 0.5 s: {p50["changed"] - f:+.2f} s, **{verdict(p50["changed"] <= f + 0.5)}**
- `sync` ≤ floor + 1.0 s: {p50["sync"] - f:+.2f} s, **{verdict(p50["sync"] <= f + 1.0)}**
- `sync --watch` ≤ floor + 1.0 s: {p50["syncwatch"] - f:+.2f} s, **{verdict(p50["syncwatch"] <= f + 1.0)}**
- failed requests during edit restarts: {sum(failed.values())}, **{verdict(sum(failed.values()) == 0)}**
"""
    heading = f"Backend.AI from source ({line.branch}): no-op, edit-to-serving, no downtime"
    if not args.no_write:
        write_section(heading, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
