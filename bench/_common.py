"""Shared pieces of the benchmarks: tool installation, interleaved timing, tables, RESULTS.md.

Standard library only: the benchmarks drive every tool (devkit included) through subprocess.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
TOOLS_VENV = WORK / "venv"
NPM_PREFIX = WORK / "npm"
RESULTS = BENCH / "RESULTS.md"

PIP_PACKAGES = ("gitlint", "commitizen", "conventional-pre-commit")
NPM_PACKAGES = ("@commitlint/cli@20", "@commitlint/config-conventional@20")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def default_devkit_python() -> str:
    local = REPO / ".venv" / "bin" / "python"
    return str(local) if local.exists() else "/work/venv/bin/python"


def run_text(cmd: Sequence[str], cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)


def first_line(cmd: Sequence[str], cwd: str | Path | None = None) -> str:
    try:
        r = run_text(cmd, cwd)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    out = (r.stdout or r.stderr).strip().splitlines()
    return out[0].strip() if out else "?"


# --- tools -----------------------------------------------------------------------------------


class Tools(NamedTuple):
    gitlint: str | None
    cz: str | None
    cpc: str | None  # conventional-pre-commit
    commitlint: str | None
    node_modules: Path | None
    skipped: dict[str, str]  # tool -> why it is not measured


def ensure_tools(install: bool = True) -> Tools:
    """The comparison tools, installed into bench/.work/ on first use; a tool that can't be had is skipped."""
    WORK.mkdir(parents=True, exist_ok=True)
    skipped: dict[str, str] = {}
    vbin = TOOLS_VENV / "bin"
    wanted = {
        "gitlint": vbin / "gitlint",
        "cz": vbin / "cz",
        "conventional-pre-commit": vbin / "conventional-pre-commit",
    }
    if install and not all(p.exists() for p in wanted.values()):
        log(f"installing {', '.join(PIP_PACKAGES)} into {TOOLS_VENV}")
        r = subprocess.run(
            [sys.executable, "-m", "venv", str(TOOLS_VENV)],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode == 0:
            r = subprocess.run(
                [str(vbin / "python"), "-m", "pip", "install", "-q", *PIP_PACKAGES],
                capture_output=True,
                text=True,
                check=False,
            )
        if r.returncode != 0:
            why = (r.stderr.strip().splitlines() or ["pip failed"])[-1]
            log(f"pip install failed: {why}")
    for name, path in wanted.items():
        if not path.exists():
            skipped[name] = (
                f"not installed in {TOOLS_VENV} (pip install {name} failed or was not attempted)"
            )

    cl_bin = NPM_PREFIX / "node_modules" / ".bin" / "commitlint"
    if install and not cl_bin.exists():
        npm = shutil.which("npm")
        if npm is None:
            skipped["commitlint"] = "npm is not on PATH"
        else:
            log(f"installing {' '.join(NPM_PACKAGES)} into {NPM_PREFIX}")
            r = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(NPM_PREFIX),
                    *NPM_PACKAGES,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if r.returncode != 0:
                log("npm install failed: " + (r.stderr.strip().splitlines() or ["?"])[-1])
    if not cl_bin.exists():
        skipped.setdefault(
            "commitlint", f"not installed in {NPM_PREFIX} (npm install failed or was not attempted)"
        )
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")
    return Tools(
        gitlint=str(wanted["gitlint"]) if "gitlint" not in skipped else None,
        cz=str(wanted["cz"]) if "cz" not in skipped else None,
        cpc=str(wanted["conventional-pre-commit"])
        if "conventional-pre-commit" not in skipped
        else None,
        commitlint=str(cl_bin) if "commitlint" not in skipped else None,
        node_modules=NPM_PREFIX / "node_modules" if "commitlint" not in skipped else None,
        skipped=skipped,
    )


def tool_versions(devkit_python: str, tools: Tools) -> dict[str, str]:
    vpy = str(TOOLS_VENV / "bin" / "python")
    meta = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    out = {
        "devkit": first_line([devkit_python, "-m", "devkit", "--version"]).removeprefix("devkit ")
        + f" (git {git_head()})",
        "devkit interpreter": f"{devkit_python}: " + first_line([devkit_python, "--version"]),
        "git": first_line(["git", "--version"]),
    }
    if tools.gitlint:
        out["gitlint"] = first_line([vpy, "-c", meta, "gitlint-core"])
    if tools.cz:
        out["commitizen"] = first_line([vpy, "-c", meta, "commitizen"])
    if tools.cpc:
        out["conventional-pre-commit"] = first_line([vpy, "-c", meta, "conventional-pre-commit"])
    if tools.gitlint or tools.cz or tools.cpc:
        out["tools interpreter"] = f"{vpy}: " + first_line([vpy, "--version"])
    if tools.commitlint:
        out["commitlint"] = first_line([tools.commitlint, "--version"])
        cc = NPM_PREFIX / "node_modules" / "@commitlint" / "config-conventional" / "package.json"
        m = re.search(r'"version":\s*"([^"]+)"', cc.read_text()) if cc.exists() else None
        out["@commitlint/config-conventional"] = m.group(1) if m else "?"
        out["node"] = first_line(["node", "--version"])
    return out


def devkit_env(state: Path) -> dict[str, str]:
    """The environment devkit runs in for a benchmark: its state, ssh_config and known_hosts under
    `state` (the real ~/.ssh is never touched), this checkout's devkit first on the path."""
    return {
        **os.environ,
        "DEVKIT_STATE_DIR": str(state / "state"),
        "DEVKIT_SSH_CONFIG": str(state / "ssh_config"),
        "DEVKIT_KNOWN_HOSTS": str(state / "known_hosts"),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
    }


def git_head() -> str:
    r = run_text(["git", "rev-parse", "--short", "HEAD"], REPO)
    dirty = run_text(["git", "status", "--porcelain", "--", "devkit"], REPO).stdout.strip()
    return (r.stdout.strip() or "?") + ("+dirty devkit/" if dirty else "")


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {mem} RAM, {platform.system()} {platform.release()}; "
        f"load average at start {load()}"
    )


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def today() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- timing ----------------------------------------------------------------------------------


class Cmd(NamedTuple):
    label: str
    argv: list[str]
    cwd: str | None = None


class Sample(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + sys of the process and the children it waited for
    maxrss_kib: int
    rc: int


class Stats(NamedTuple):
    label: str
    walls: list[float]
    cpus: list[float]
    maxrss_kib: int
    rcs: set[int]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def lo(self) -> float:
        return min(self.walls)

    @property
    def hi(self) -> float:
        return max(self.walls)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpus)


def run_once(cmd: Cmd, env: dict[str, str] | None = None) -> Sample:
    start = time.perf_counter()
    p = subprocess.Popen(
        cmd.argv,
        cwd=cmd.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, p.returncode)


def measure(
    cmds: Sequence[Cmd],
    runs: int,
    warmup: int = 1,
    what: str = "",
    env: dict[str, str] | None = None,
) -> list[Stats]:
    """Interleaved rounds: every round runs each command once, the order rotating between rounds."""
    samples: list[list[Sample]] = [[] for _ in cmds]
    total = warmup + runs
    for r in range(total):
        log(f"{what} round {r + 1}/{total}{' (warm-up)' if r < warmup else ''}")
        k = r % len(cmds)
        order = list(range(len(cmds)))[k:] + list(range(len(cmds)))[:k]
        for i in order:
            s = run_once(cmds[i], env)
            if r >= warmup:
                samples[i].append(s)
    return [
        Stats(
            c.label,
            [s.wall for s in ss],
            [s.cpu for s in ss],
            max(s.maxrss_kib for s in ss),
            {s.rc for s in ss},
        )
        for c, ss in zip(cmds, samples, strict=True)
    ]


def ms(seconds: float) -> str:
    v = seconds * 1000
    return f"{v:,.0f}" if v >= 10 else f"{v:.1f}"


def wall_cell(s: Stats) -> str:
    return f"{ms(s.median)} ({ms(s.lo)}–{ms(s.hi)})"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "–"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --- sandbox hosts ---------------------------------------------------------------------------


def sandbox_args(rounds: int) -> argparse.Namespace:
    """--rounds and --keep of a benchmark on sandbox hosts, which are network namespaces: root only."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--keep", action="store_true", help="leave the sandboxes running")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("[bench] needs root (sandbox hosts are network namespaces)")
    return args


def down_sandboxes(devkit: list[str], env: dict[str, str]) -> None:
    """Every sandbox of that state dir down, whatever happened to the benchmark."""
    for p in sorted((Path(env["DEVKIT_STATE_DIR"]) / "sandbox").glob("*/sandbox.json")):
        subprocess.run(
            [*devkit, "sandbox", "down", p.parent.name], env=env, capture_output=True, check=False
        )


# --- edit-to-serving ---------------------------------------------------------------------------

POLLER = r"""
import json, sys, time, urllib.request
url, keys, last, failed = sys.argv[1], sys.argv[2:], None, 0
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.loads(r.read())
        now = [data[k] for k in keys]
    except Exception:
        now, failed = None, failed + 1
    if now != last or now is None:  # each failure too: the count is always current
        print(time.time(), failed, json.dumps(now), flush=True)
        last = now
    time.sleep(0.005)
"""


class Poller:
    """A process in a host's network namespace (`netns`: a path for nsenter --net) that asks a
    JSON endpoint every 5 ms and reports each new answer (the values of `keys`), stamped with this
    machine's clock, the one a benchmark saves files by."""

    def __init__(self, netns: str, url: str, keys: list[str]) -> None:
        self.p = subprocess.Popen(
            ["nsenter", f"--net={netns}", "/usr/bin/python3", "-u", "-c", POLLER, url, *keys],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.q: queue.Queue[tuple[float, list | None]] = queue.Queue()
        self.failed = 0  # requests that failed (refused, reset, no answer in 5 s) so far
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            t, failed, data = line.split(" ", 2)
            self.failed = int(failed)
            self.q.put((float(t), json.loads(data)))

    def drain(self) -> None:
        while not self.q.empty():
            self.q.get_nowait()

    def until(self, ok: Callable[..., bool], timeout: float = 60) -> tuple[float, list]:
        """When the answer first satisfied ok(*values)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                t, now = self.q.get(timeout=0.5)
            except queue.Empty:
                continue
            if now is not None and ok(*now):
                return t, now
        sys.exit("[bench] the service never answered as expected")

    def stop(self) -> None:
        self.p.terminate()


# --- RESULTS.md ------------------------------------------------------------------------------


def write_section(heading: str, body: str, path: Path = RESULTS) -> None:
    """Replace the `## heading` section of RESULTS.md (up to the next `## `), or append it; other sections stay."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    log(f"wrote the `## {heading}` section of {path}")
