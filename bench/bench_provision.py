"""No-op re-provision, whole process: devkit vs the same convergent check as a pyinfra deploy.

Starts 3 sandbox hosts (network namespaces, root only) under bench/.work/provision/, provisions the
halfstack once, then times `devkit provision` (nothing to do) on 1 and on 3 hosts against `pyinfra -y`
running a deploy that checks the same things (packages, directories, every managed file with its mode)
on the same hosts with the same host-key checking. pyinfra lives in its own venv (it pins paramiko<5).
Usage: python bench/bench_provision.py [--rounds N] [--keep]
"""

from __future__ import annotations

import json
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
    git_head,
    log,
    machine,
    sandbox_args,
    today,
    write_section,
)

HOSTS = ["bp1", "bp2", "bp3"]
STATE = WORK / "provision"
PYINFRA_VENV = WORK / "pyinfra"
HEADING = "No-op provision: devkit vs pyinfra"


def sh(cmd: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, env=env, cwd=STATE, capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        sys.exit(f"[bench] failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


def ensure_pyinfra() -> Path:
    exe = PYINFRA_VENV / "bin" / "pyinfra"
    if not exe.exists():
        log("installing pyinfra into bench/.work/pyinfra")
        subprocess.run([sys.executable, "-m", "venv", str(PYINFRA_VENV)], check=True)
        subprocess.run(
            [str(PYINFRA_VENV / "bin" / "pip"), "install", "-q", "pyinfra==3.*"], check=True
        )
    return exe


def pyinfra_files(env: dict[str, str], devkit: list[str]) -> None:
    """inventory.py + deploy.py: the managed set each host has, read from its (shared) filesystem."""
    inv, deploy = [], ["from pyinfra import host", "from pyinfra.operations import apt, files", ""]
    sets = {}
    for h in HOSTS:
        box = json.loads((STATE / "state" / "sandbox" / h / "sandbox.json").read_text())
        inv.append(
            (
                box["address"],
                {
                    "ssh_user": "root",
                    "ssh_key": f"{box['dir']}/client_key",
                    "ssh_known_hosts_file": f"{box['dir']}/known_hosts",
                    "ssh_strict_host_key_checking": "yes",
                    "devkit_host": h,
                },
            )
        )
        base = Path(f"/root/.devkit/{h}/halfstack")
        managed = []
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base).as_posix()
            if rel.startswith(("data/", "venvs/", "wheels", "run/", "logs/", "state/init/")):
                continue
            st = p.stat()
            managed.append((rel, p.is_dir(), f"{st.st_mode & 0o777:o}", p.owner()))
        sets[h] = (str(base), managed)
    (STATE / "inventory.py").write_text(f"hosts = {inv!r}\n")
    deploy += [
        f"SETS = {sets!r}",
        "base, managed = SETS[host.data.devkit_host]",
        "apt.packages(name='packages', packages=['python3-venv', 'postgresql', 'redis-server', 'etcd-server', "
        "'etcd-client'], present=True)",
        "for rel, is_dir, mode, owner in managed:",
        "    path = base + '/' + rel",
        "    if is_dir:",
        "        files.directory(name='dir ' + rel, path=path, mode=mode, user=owner)",
        "    else:",
        "        files.put(name='file ' + rel, src=path, dest=path, mode=mode, user=owner)",
    ]
    (STATE / "deploy.py").write_text("\n".join(deploy) + "\n")


def timed(cmd: list[str], env: dict[str, str], expect: str) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=STATE, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    if r.returncode != 0 or expect not in r.stdout + r.stderr:
        sys.exit(
            f"[bench] unexpected result from {' '.join(cmd)}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        )
    return dt


def main() -> int:
    args = sandbox_args(7)
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "halfstack"\n')
    env = devkit_env(STATE)
    devkit = [default_devkit_python(), "-m", "devkit"]
    pyinfra = str(ensure_pyinfra())
    try:
        for h in HOSTS:
            sh([*devkit, "sandbox", "up", h, "--isolation", "netns"], env)
        log("provisioning the halfstack on 3 sandbox hosts")
        sh([*devkit, "provision", *HOSTS], env)
        pyinfra_files(env, devkit)
        cases = [
            ("devkit provision (1 host)", [*devkit, "provision", HOSTS[0]], "unchanged"),
            ("devkit provision (3 hosts)", [*devkit, "provision", *HOSTS], "unchanged"),
            (
                "pyinfra -y deploy.py (1 host)",
                [pyinfra, "-y", "--limit", "devkit_host=bp1", "inventory.py", "deploy.py"],
                "No change",
            ),
            (
                "pyinfra -y deploy.py (3 hosts)",
                [pyinfra, "-y", "inventory.py", "deploy.py"],
                "No change",
            ),
        ]
        # pyinfra's --limit takes host names: use the first host's address instead
        first = json.loads((STATE / "state" / "sandbox" / HOSTS[0] / "sandbox.json").read_text())[
            "address"
        ]
        cases[2] = (
            cases[2][0],
            [pyinfra, "-y", "--limit", first, "inventory.py", "deploy.py"],
            "No change",
        )
        for _, cmd, expect in cases:  # warm-up, and proof that each reports no change
            timed(cmd, env, expect)
        samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(args.rounds):  # interleaved, so load drifts hit every case alike
            for name, cmd, expect in cases:
                samples[name].append(timed(cmd, env, expect))
    finally:
        if not args.keep:
            for h in HOSTS:
                sh([*devkit, "teardown", h, "--purge"], env, check=False)
                sh([*devkit, "sandbox", "down", h], env, check=False)
    med = {k: statistics.median(v) for k, v in samples.items()}
    anchor1, anchor3 = med["pyinfra -y deploy.py (1 host)"], med["pyinfra -y deploy.py (3 hosts)"]
    rows = []
    for name, _, _ in cases:
        v = samples[name]
        anchor = anchor3 if "3 hosts" in name else anchor1
        rows.append(
            f"| {name} | {med[name]:.3f} ({min(v):.3f}–{max(v):.3f}) | {med[name] / anchor:.2f}x |"
        )
    d1, d3 = med["devkit provision (1 host)"], med["devkit provision (3 hosts)"]
    p1, p3 = anchor1, anchor3
    pyv = subprocess.run([pyinfra, "--version"], capture_output=True, text=True).stdout.strip()
    body = f"""Measured {today()} by `bench/bench_provision.py` ({args.rounds} interleaved rounds after 1 warm-up; whole-process wall seconds; every run checked to report no change).

Machine: {machine()}. devkit {git_head()} ({default_devkit_python()}); {pyv} in bench/.work/pyinfra.

Hosts: 3 sandbox hosts (network namespaces with their own sshd, logged in as root) with the halfstack provisioned. devkit: one facts script per host (packages, dirs, file hashes, secrets, venv specs, supervisord state), then a plan that is empty. pyinfra: `apt.packages` + `files.directory`/`files.put` (mode, owner) for the same managed set, with the hosts' known_hosts and strict host-key checking.

| command (no-op) | median s (min–max) | x pyinfra, same hosts |
|---|---|---|
{chr(10).join(rows)}

Targets: no-op on one host under 1 s: {d1:.3f} s ({"met" if d1 < 1 else "MISSED"}); 3 hosts under 1.3x one host: {d3 / d1:.2f}x ({"met" if d3 / d1 < 1.3 else "MISSED"}). pyinfra's own 3-vs-1 ratio: {p3 / p1:.2f}x.
"""
    write_section(HEADING, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
