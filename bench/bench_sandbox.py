"""`devkit sandbox up` cold (no cached root) and warm, a no-op `up`, `up` after its init was killed,
and `down`, per Debian release; the netns sandbox alongside. Root only.

Cold runs use a throw-away root cache under bench/.work/sandbox/ (debootstrap from this machine's
Debian mirror each time); warm runs use the machine's cache (built first if missing, not timed).
Usage: python bench/bench_sandbox.py [--releases bookworm trixie] [--runs N] [--no-cold] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
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

HERE = WORK / "sandbox"
TARGET = 5.0  # seconds: a warm `sandbox up` (DESIGN.md)
# inside a sandbox: dockerd from docker.io (apt through the proxy) running a container
BUSY = (
    "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null; "
    # trixie ships the docker CLI apart (docker-cli), bookworm inside docker.io
    "apt-get install -y -q --no-install-recommends docker.io busybox-static "
    "$(apt-cache show docker-cli >/dev/null 2>&1 && echo docker-cli) >/dev/null; "
    "setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null & "
    "for i in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.1; done; "
    "mkdir -p /tmp/img/bin && cp /bin/busybox /tmp/img/bin/ && tar -C /tmp/img -c . | docker import - bb >/dev/null; "
    "docker run -d bb /bin/busybox sleep 1000000 >/dev/null"
)


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, env=env, cwd=HERE, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"[bench] {' '.join(argv[2:])} failed:\n{r.stdout}{r.stderr}")
    return took


def box(env: dict[str, str], name: str) -> dict:
    return json.loads(
        (Path(env["DEVKIT_STATE_DIR"]) / "sandbox" / name / "sandbox.json").read_text()
    )


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return
        time.sleep(0.02)


def cell(xs: list[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", nargs="+", default=["bookworm", "trixie"])
    ap.add_argument("--runs", type=int, default=5, help="warm rounds per release (default 5)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold (debootstrap) runs")
    ap.add_argument("--no-write", action="store_true", help="print instead of writing RESULTS.md")
    ap.add_argument("--devkit-python", default=default_devkit_python())
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("[bench] needs root (isolated sandboxes have their own namespaces)")
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    env = devkit_env(HERE)
    dk = [args.devkit_python, "-m", "devkit"]
    at_start = machine()  # with the load average at the start
    ssh = ["ssh", "-F", env["DEVKIT_SSH_CONFIG"], "-o", "BatchMode=yes"]
    rows, cold_info = [], {}
    try:
        for release in args.releases:
            res: dict[str, list[float]] = {
                k: [] for k in ("cold", "warm", "noop", "restart", "ssh", "down")
            }
            if not args.no_cold:
                cache = HERE / f"cold-cache-{release}"
                cold_env = {**env, "DEVKIT_ROOTFS_CACHE": str(cache)}
                log(f"{release}: cold up (debootstrap into {cache})")
                res["cold"].append(
                    timed([*dk, "sandbox", "up", "cold", "--release", release], cold_env)
                )
                info = json.loads(next(cache.glob("*/devkit-rootfs.json")).read_text())
                cold_info[release] = info
                res["down"].append(timed([*dk, "sandbox", "down", "cold"], cold_env))
                shutil.rmtree(cache)
            log(f"{release}: making sure the machine's cache has the root (not timed)")
            timed([*dk, "sandbox", "cache", release], env)
            for i in range(args.runs):
                name = f"w{i}"
                log(f"{release}: warm round {i + 1}/{args.runs}")
                res["warm"].append(timed([*dk, "sandbox", "up", name, "--release", release], env))
                res["noop"].append(timed([*dk, "sandbox", "up", name], env))
                res["ssh"].append(timed([*ssh, name, "true"], env))
                init = box(env, name)["init"]
                os.kill(init, signal.SIGKILL)
                wait_gone(init)
                res["restart"].append(timed([*dk, "sandbox", "up", name], env))
                res["down"].append(timed([*dk, "sandbox", "down", name], env))
            log(f"{release}: down with dockerd and a container running (apt inside, not timed)")
            timed([*dk, "sandbox", "up", "busy", "--release", release], env)
            timed([*ssh, "busy", BUSY], env)
            res["busy"] = [timed([*dk, "sandbox", "down", "busy"], env)]
            rows.append((release, res))
        log("netns (for comparison): up, down")
        net: dict[str, list[float]] = {"warm": [], "noop": [], "ssh": [], "down": []}
        for i in range(args.runs):
            name = f"n{i}"
            net["warm"].append(timed([*dk, "sandbox", "up", name, "--isolation", "netns"], env))
            net["noop"].append(timed([*dk, "sandbox", "up", name], env))
            net["ssh"].append(timed([*ssh, name, "true"], env))
            net["down"].append(timed([*dk, "sandbox", "down", name], env))
    finally:
        down_sandboxes(dk, env)
        for cache in HERE.glob("cold-cache-*"):
            subprocess.run(
                [*dk, "sandbox", "down", "cold"],
                env={**env, "DEVKIT_ROOTFS_CACHE": str(cache)},
                capture_output=True,
                check=False,
            )
            shutil.rmtree(cache, ignore_errors=True)

    header = [
        "mode",
        "cold up (debootstrap)",
        "warm up (new sandbox)",
        "up, already running",
        "up after its init was killed",
        "ssh NAME true",
        "down",
        "down, dockerd + a container running",
    ]
    body = []
    for release, res in rows:
        body.append(
            [
                f"full, {release}",
                cell(res["cold"]) if res["cold"] else "–",
                cell(res["warm"]),
                cell(res["noop"]),
                cell(res["restart"]),
                cell(res["ssh"]),
                cell(res["down"]),
                cell(res["busy"]),
            ]
        )
    body.append(
        [
            "netns (this machine's system)",
            "–",
            cell(net["warm"]),
            cell(net["noop"]),
            "–",
            cell(net["ssh"]),
            cell(net["down"]),
            "–",
        ]
    )
    verdicts = []
    for release, res in rows:
        worst = max(res["warm"])
        verdicts.append(
            f"- {release}: warm `sandbox up` median {statistics.median(res['warm']):.2f} s, slowest {worst:.2f} s "
            f"→ {'**met**' if worst < TARGET else '**NOT met**'}"
        )
    roots = "".join(
        f"\n- {r}: Debian {i['version']}, debootstrap + finishing {i['seconds']} s from {i['mirror']}"
        for r, i in cold_info.items()
    )
    text = f"""Measured {today()} by `bench/bench_sandbox.py` ({args.runs} warm rounds per release; one cold run each; wall seconds of the whole `devkit` process, median (min–max)).

Machine: {at_start}; at the end {load()}; devkit git {git_head()}.

Cold = `sandbox up` with an empty root cache: debootstrap of a Debian minbase (+ openssh-server, python3, python3-venv, ca-certificates, iproute2, procps) from this machine's Debian mirror, then the sandbox; its `down` is counted with the warm ones. Warm = a new sandbox on the cached root (its layer, data dirs, keys, cgroups, namespaces, veth, network filter, proxy check, boot, sshd answering). "Up after its init was killed" = the whole sandbox restarted on its kept files. `down` kills its init (every process in it goes), waits for its cgroups to empty, removes them, its files and (with the last sandbox) the bridge and the proxy.{roots}

{table(header, body)}

Target (issue 9): a warm `sandbox up` under {TARGET:.0f} s:

{chr(10).join(verdicts)}
"""
    if args.no_write:
        print(text)
    else:
        write_section("Sandbox up and down", text)


if __name__ == "__main__":
    main()
