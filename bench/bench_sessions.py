"""Compute sessions on the provisioned Backend.AI 23.9.10 stack, and a cluster's provision time.

Root only (sandbox hosts are network namespaces); everything under bench/.work/sessions/. Measures:
- the first `devkit provision` of a fresh sandbox host (the stack, the kernel image built and
  registered; wheels and the image's root filesystem from the caches) and a second, no-op one;
- `backend.ai session create` until the session is ready (the CLI returns once it is RUNNING), and
  `backend.ai run --rm -c 'print(6*7)'` until its output, each against the CLI's own start-up
  (`backend.ai --help`), all run on the host over SSH;
- the first provision of a cluster of three fresh hosts (a manager host and two agent hosts) against
  the single host's.
Usage: python bench/bench_sessions.py [--rounds N] [--keep]
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

STATE = c.WORK / "sessions"
SOLO = "bs1"
CLUSTER = ["bm1", "ba1", "ba2"]
HEADING = "Sessions and a cluster (Backend.AI 23.9.10)"
WHEELS = Path(os.environ.get("DEVKIT_TEST_WHEELS") or Path.home() / ".cache/devkit-tests/wheels")


def sh(cmd: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, env=env, cwd=STATE, capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        sys.exit(f"[bench] failed: {' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def timed(cmd: list[str], env: dict[str, str], expect: str = "") -> float:
    t = time.perf_counter()
    r = sh(cmd, env)
    dt = time.perf_counter() - t
    if expect and expect not in r.stdout + r.stderr:
        sys.exit(
            f"[bench] {' '.join(cmd)}: no {expect!r} in\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        )
    return dt


def on_host(env: dict[str, str], script: str) -> list[str]:
    base = STATE / "base" / SOLO
    prefix = f". {shlex.quote(str(base / 'client/env-local-admin-api.sh'))} && cd /tmp && "
    return ["ssh", "-F", env["DEVKIT_SSH_CONFIG"], "-o", "BatchMode=yes", SOLO, prefix + script]


def stats(v: list[float]) -> str:
    return f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})"


def main() -> int:
    args = c.sandbox_args(5)
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "pyproject.toml").write_text("[tool.devkit]\n")
    env = c.devkit_env(STATE)
    devkit = [c.default_devkit_python(), "-m", "devkit"]
    common = ["--base-dir", str(STATE / "base" / "{host}"), "--wheelhouse", str(WHEELS)]
    hosts = [SOLO, *CLUSTER]
    res: dict[str, list[float]] = {}
    try:
        for h in hosts:
            sh([*devkit, "sandbox", "up", h, "--isolation", "netns"], env)
        c.log(f"first provision of {SOLO}")
        res["first provision, one host"] = [timed([*devkit, "provision", SOLO, *common], env)]
        res["second provision (no-op)"] = [
            timed([*devkit, "provision", SOLO, *common], env, "unchanged") for _ in range(3)
        ]
        cli = on_host(env, "backend.ai --help >/dev/null")
        create = on_host(env, "backend.ai session create --name bench-s python")
        destroy = on_host(env, "backend.ai session destroy bench-s")
        run = on_host(env, "backend.ai run --rm -c 'print(6*7)' python")
        for name in (
            "CLI start-up (backend.ai --help)",
            "session create -> RUNNING",
            "run --rm -> 42",
        ):
            res[name] = []
        timed(run, env, "42")  # warm-up
        for i in range(args.rounds):
            c.log(f"sessions, round {i + 1}/{args.rounds}")
            res["CLI start-up (backend.ai --help)"].append(timed(cli, env))
            res["session create -> RUNNING"].append(timed(create, env, "created and ready"))
            timed(destroy, env)
            res["run --rm -> 42"].append(timed(run, env, "42"))
        c.log("first provision of a 3-host cluster")
        res["first provision, cluster of 3"] = [
            timed([*devkit, "provision", "--manager", *CLUSTER, *common], env)
        ]
        st = sh([*devkit, "status", "--manager", *CLUSTER, "--base-dir", common[1]], env)
        assert st.stdout.count(" ALIVE ") == 3, st.stdout
    finally:
        if not args.keep:
            for h in hosts:
                base = STATE / "base" / h
                sh([*devkit, "teardown", h, "--base-dir", str(base), "--purge"], env, check=False)
                sh([*devkit, "sandbox", "down", h], env, check=False)
    rootfs = sorted(Path("/var/cache/devkit/images").glob("*.json"))
    built = json.loads(rootfs[-1].read_text()).get("seconds") if rootfs else None
    rows = [f"| {name} | {stats(v)} | {len(v)} |" for name, v in res.items()]
    one, three = res["first provision, one host"][0], res["first provision, cluster of 3"][0]
    body = f"""Measured {c.today()} by `bench/bench_sessions.py` (wall seconds; the session commands run on the host over SSH, so each includes the client's own start-up, shown on its own line).

Machine: {c.machine()}. devkit {c.git_head()} ({c.default_devkit_python()}). Wheels from {WHEELS}; the kernel image's root filesystem from the machine's image cache{f" (its debootstrap took {built} s when it was built)" if built else ""}.

| what | median s (min–max) | runs |
|---|---|---|
{chr(10).join(rows)}

The first provision includes the image: upload and `docker import` of the cached root filesystem, the LABEL/ENV build and the registration with the manager (about 15 s of it). Reference (dev-vm.md §7, the same kind of machine, by hand): create -> RUNNING 5.7–9.2 s, `run --rm` 6.8 s.

Cluster vs one host: {three / one:.2f}x (target 1.5x: {"met" if three / one <= 1.5 else "MISSED"}).
"""
    c.write_section(HEADING, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
