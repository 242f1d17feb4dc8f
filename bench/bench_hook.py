"""Commit-msg hook speed: whole-process wall time of `devkit check commit FILE` and `devkit check branch NAME`
side by side with `python -c pass`, gitlint, cz check, conventional-pre-commit and commitlint.

    /work/venv/bin/python bench/bench_hook.py [--runs 20] [--devkit-python PY] [--no-write]

Interleaved rounds (each round runs every command once, rotating the order), one warm-up round, then median
and min-max. Writes the `## Commit-msg hook` section of bench/RESULTS.md. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO,
    WORK,
    Cmd,
    Stats,
    Tools,
    default_devkit_python,
    ensure_tools,
    load,
    log,
    machine,
    measure,
    mib,
    ms,
    ratio,
    table,
    today,
    tool_versions,
    wall_cell,
    write_section,
)

HOOK_REPO = WORK / "hook-repo"
WHEEL_VENV = WORK / "wheel-venv"

GOOD = """feat(parser): accept footers with multi-line values

Footer values may span several lines; parsing ends at the next token.

Refs: #123
"""
# commit-conventions.md §3: under the spec only the missing blank line is an error
BAD = """Feat(API): Added the new login endpoint.
This body is not separated by a blank line from the header.
"""
GOOD_BRANCH = "feat/add-login-endpoint"
BAD_BRANCH = "Add_Login"

FORBIDDEN = (
    "click",
    "fabric",
    "jinja2",
    "rich",
    "towncrier",
    "importlib.metadata",
    "invoke",
    "paramiko",
    "tomlkit",
)


def make_repo(tools: Tools) -> tuple[Path, Path]:
    """A small repository with every tool's minimal documented config; returns the good and bad message files."""
    if HOOK_REPO.exists():
        shutil.rmtree(HOOK_REPO)
    HOOK_REPO.mkdir(parents=True)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=HOOK_REPO, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.name", "Bench")
    git("config", "user.email", "bench@example.invalid")
    (HOOK_REPO / "pyproject.toml").write_text(
        '[project]\nname = "sample"\nversion = "0"\n\n[tool.devkit]\npreset = "conventional"\n'
    )
    (HOOK_REPO / ".gitlint").write_text("[general]\ncontrib=contrib-title-conventional-commits\n")
    (HOOK_REPO / "commitlint.config.mjs").write_text(
        "export default { extends: ['@commitlint/config-conventional'] };\n"
    )
    if tools.node_modules:
        (HOOK_REPO / "node_modules").symlink_to(tools.node_modules)
        with (HOOK_REPO / ".git" / "info" / "exclude").open("a") as f:
            f.write("node_modules\n")
    git("add", "-A")
    git("commit", "-q", "-m", "chore: start")
    good = HOOK_REPO / ".git" / "COMMIT_EDITMSG"
    bad = HOOK_REPO / ".git" / "BAD_EDITMSG"
    good.write_text(GOOD)
    bad.write_text(BAD)
    return good, bad


def wheel_install(py: str) -> str:
    """devkit as users and pre-commit get it: a wheel built from this checkout, pip-installed (with its
    dependencies from PyPI, byte-compiled) into a fresh venv; returns that venv's interpreter."""
    dist = WORK / "wheel-dist"
    shutil.rmtree(dist, ignore_errors=True)
    shutil.rmtree(WHEEL_VENV, ignore_errors=True)
    log("building a wheel of this checkout and installing it into " + str(WHEEL_VENV))
    build = [py, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(dist), str(REPO)]
    if subprocess.run(build, capture_output=True, check=False).returncode != 0:
        # without `build` (the test extras): pip builds it in an isolated environment
        pip_wheel = [py, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(REPO)]
        subprocess.run(pip_wheel, capture_output=True, check=True)
    subprocess.run([py, "-m", "venv", str(WHEEL_VENV)], capture_output=True, check=True)
    wpy = str(WHEEL_VENV / "bin" / "python")
    wheel = next(dist.glob("*.whl"))
    subprocess.run([wpy, "-m", "pip", "install", "-q", str(wheel)], capture_output=True, check=True)
    return wpy


def commands(py: str, tools: Tools, msg: Path, tag: str) -> list[Cmd]:
    script = str(Path(py).parent / "devkit")
    cwd = str(HOOK_REPO)
    out = [
        Cmd(
            f"devkit check commit F [{tag}] (python -m devkit)",
            [py, "-m", "devkit", "check", "commit", str(msg)],
            cwd,
        ),
        Cmd(
            f"devkit check commit F [{tag}] (console script)",
            [script, "check", "commit", str(msg)],
            cwd,
        ),
    ]
    if tools.cpc:
        out.append(Cmd(f"conventional-pre-commit F [{tag}]", [tools.cpc, str(msg)], cwd))
    if tools.gitlint:
        out.append(
            Cmd(
                f"gitlint --msg-filename F (CT1) [{tag}]",
                [tools.gitlint, "--msg-filename", str(msg)],
                cwd,
            )
        )
    if tools.cz:
        out.append(
            Cmd(
                f"cz check --commit-msg-file F [{tag}]",
                [tools.cz, "check", "--commit-msg-file", str(msg)],
                cwd,
            )
        )
    if tools.commitlint:
        out.append(
            Cmd(
                f"commitlint --edit F (config-conventional) [{tag}]",
                [tools.commitlint, "--edit", str(msg)],
                cwd,
            )
        )
    return out


def verdicts(cmds: list[Cmd], env: dict[str, str]) -> dict[str, tuple[int, str]]:
    """One extra run of each command with its output captured: exit code and the first line it printed."""
    out: dict[str, tuple[int, str]] = {}
    for c in cmds:
        r = subprocess.run(c.argv, cwd=c.cwd, env=env, capture_output=True, text=True, check=False)
        text = (r.stdout + r.stderr).strip().splitlines()
        out[c.label] = (r.returncode, text[0][:100] if text else "")
    return out


def importtime(
    py: str, msg: Path, env: dict[str, str], runs: int = 7
) -> tuple[str, float, float, list[str]]:
    """`python -X importtime -m devkit check commit F`: median per module over `runs` runs."""
    cum: dict[str, list[int]] = {}
    self_: dict[str, list[int]] = {}
    depth: dict[str, int] = {}
    totals: list[int] = []
    bare: list[int] = []
    bare_names: set[str] = set()
    for _ in range(runs):
        for argv, sink in (
            ([py, "-X", "importtime", "-m", "devkit", "check", "commit", str(msg)], totals),
            ([py, "-X", "importtime", "-c", "pass"], bare),
        ):
            r = subprocess.run(
                argv, cwd=HOOK_REPO, env=env, capture_output=True, text=True, check=False
            )
            total = 0
            names: set[str] = set()
            for line in r.stderr.splitlines():
                m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
                if not m:
                    continue
                s, c, indent, name = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
                total += s
                names.add(name)
                if sink is totals:
                    self_.setdefault(name, []).append(s)
                    cum.setdefault(name, []).append(c)
                    depth[name] = len(indent) // 2
            sink.append(total)
            if sink is bare:
                bare_names = names
    med = {n: statistics.median(v) for n, v in cum.items()}
    top = sorted(med, key=lambda n: -med[n])[:15]
    rows = [
        [
            f"`{'· ' * depth[n]}{n}`",
            f"{med[n] / 1000:.1f}",
            f"{statistics.median(self_[n]) / 1000:.1f}",
        ]
        for n in top
    ]
    body = table(["module (· = nesting)", "cumulative ms", "self ms"], rows)
    found = sorted(n for n in cum if n in FORBIDDEN or n.split(".")[0] in FORBIDDEN)
    note = f"{len(cum)} modules imported; " + (
        "none of " + ", ".join(FORBIDDEN) + " is imported"
        if not found
        else "FORBIDDEN imports present: " + ", ".join(found)
    )
    devkit_mods = sorted(n for n in cum if n == "devkit" or n.startswith("devkit."))
    extra_std = sorted(n for n in cum if n not in bare_names and n not in devkit_mods)
    own = sum(statistics.median(self_[n]) for n in devkit_mods) / 1000
    std = sum(statistics.median(self_[n]) for n in extra_std) / 1000
    note += (
        f". Self time of devkit's own {len(devkit_mods)} modules: {own:.1f} ms ({', '.join(devkit_mods)}). "
        f"Self time of the {len(extra_std)} standard-library modules the bare interpreter does not load: "
        f"{std:.1f} ms ({', '.join(extra_std)})."
    )
    return body, statistics.median(totals) / 1000, statistics.median(bare) / 1000, [note]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--devkit-python",
        default=default_devkit_python(),
        help="the interpreter devkit is installed in",
    )
    ap.add_argument("--runs", type=int, default=20, help="timed rounds (default 20)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up rounds (default 1)")
    ap.add_argument(
        "--no-install", action="store_true", help="use only the tools already in bench/.work/"
    )
    ap.add_argument(
        "--no-write",
        action="store_true",
        help="print the section instead of writing bench/RESULTS.md",
    )
    ap.add_argument(
        "--editable",
        action="store_true",
        help="measure --devkit-python's (editable) install instead of a wheel built from this checkout",
    )
    args = ap.parse_args()
    py = args.devkit_python
    started = machine()
    if not Path(py).exists():
        log(f"no interpreter at {py}: pass --devkit-python")
        return 2

    tools = ensure_tools(install=not args.no_install)
    if not args.editable:
        py = wheel_install(py)
    install = "editable install" if args.editable else "wheel install, byte-compiled by pip"
    good, bad = make_repo(tools)
    base = Cmd(
        f"python -c pass (devkit's venv interpreter: {install})", [py, "-c", "pass"], str(HOOK_REPO)
    )
    script = str(Path(py).parent / "devkit")
    good_cmds = commands(py, tools, good, "good")
    bad_cmds = commands(py, tools, bad, "bad")
    branch_cmds = [
        Cmd(
            f"devkit check branch {GOOD_BRANCH} (console script)",
            [script, "check", "branch", GOOD_BRANCH],
            str(HOOK_REPO),
        ),
        Cmd(
            f"devkit check branch {BAD_BRANCH} (console script)",
            [script, "check", "branch", BAD_BRANCH],
            str(HOOK_REPO),
        ),
        Cmd(
            f"python -m devkit check branch {GOOD_BRANCH}",
            [py, "-m", "devkit", "check", "branch", GOOD_BRANCH],
            str(HOOK_REPO),
        ),
    ]
    everything = [base, *good_cmds, *bad_cmds, *branch_cmds]
    # Measure what a user gets: byte-code caches written on first use (this session's environment sets
    # PYTHONDONTWRITEBYTECODE=1, which would leave devkit's editable source uncompiled on every run).
    env = {k: val for k, val in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
        "NO_COLOR": "1"
    }
    v = verdicts(everything, env)
    stats = {s.label: s for s in measure(everything, args.runs, args.warmup, "hook", env)}
    log("python -X importtime breakdown of the hook path")
    imp_table, imp_total, imp_bare, imp_notes = importtime(py, good, env)

    floor = stats[base.label]
    dk_ref = {
        tag: stats[f"devkit check commit F [{tag}] (console script)"] for tag in ("good", "bad")
    }
    expect_fail = {c.label for c in bad_cmds} | {branch_cmds[1].label}

    def row(s: Stats, ref: Stats | None) -> list[str]:
        rc, _first = v[s.label]
        bad_case = s.label in expect_fail
        ok = (rc != 0) if bad_case else (rc == 0)
        verdict = f"{rc} ({'right' if ok else 'WRONG'})" if s.label != base.label else str(rc)
        return [
            s.label,
            wall_cell(s),
            ms(s.cpu_median),
            mib(s.maxrss_kib),
            ratio(s.median, floor.median),
            ratio(s.median, ref.median) if ref else "–",
            verdict,
        ]

    header = [
        "command",
        "wall median ms (min–max)",
        "CPU median ms",
        "peak RSS",
        "x python -c pass",
        "x devkit",
        "exit",
    ]
    rows = [row(floor, None)]
    for tag, cmds in (("good", good_cmds), ("bad", bad_cmds)):
        rows += [row(stats[c.label], dk_ref[tag]) for c in cmds]
    rows += [row(stats[c.label], None) for c in branch_cmds]

    targets = []
    for c in [*good_cmds[:2], *bad_cmds[:2], *branch_cmds]:
        s = stats[c.label]
        r = s.median / floor.median
        targets.append(
            f"- {c.label}: {r:.2f}x python -c pass (median) → **{'met' if r <= 2.0 else 'NOT met'}**"
            f"; min vs min {s.lo / floor.lo:.2f}x; CPU median {s.cpu_median / floor.cpu_median:.2f}x"
        )
    versions = tool_versions(py, tools)
    skipped = [f"- {k}: skipped ({why})" for k, why in tools.skipped.items()]

    body = "\n".join(
        [
            f"Measured {today()} by `bench/bench_hook.py` on a {install} of devkit "
            f"({args.runs} interleaved rounds after {args.warmup} warm-up; "
            "whole-process wall time from spawn to reap, output to /dev/null; CPU = user+sys; peak RSS = max over runs; "
            "PYTHONDONTWRITEBYTECODE unset, so every Python tool runs from byte-code caches after the warm-up).",
            "",
            f"Machine: {started}.",
            "",
            "Versions: " + "; ".join(f"{k} {val}" for k, val in versions.items()) + ".",
            "",
            "Each command runs in a fresh small repository with its tool's minimal documented config (`[tool.devkit] "
            'preset = "conventional"` in pyproject.toml, `.gitlint` with contrib CT1, `commitlint.config.mjs` extending '
            "config-conventional, commitizen and conventional-pre-commit with no config). F is `.git/COMMIT_EDITMSG`. "
            "Good = a 5-line message with scope, body and `Refs:` footer; bad = commit-conventions.md §3 "
            "(`Feat(API): Added the new login endpoint.` with no blank line before the body: under Conventional Commits "
            '1.0.0 only the missing blank line is an error). "x devkit" = ratio to devkit\'s console script on the same '
            'message. "exit" = the exit code, right when a good message/name passes and a bad one fails.',
            "",
            table(header, rows),
            "",
            *skipped,
            "",
            "Targets (issues 2 and 13): the hook within 2x of `python -c pass`, as installed from a wheel:",
            "",
            *targets,
            "",
            f"Load average at the end: {load()} (other sessions share this 2-vCPU machine; min-vs-min and CPU ratios "
            "are the less load-sensitive figures).",
            "",
            f"Import time of the hook path (`{Path(py).name} -X importtime -m devkit check commit F`, median of 7 runs): "
            f"sum of self times {imp_total:.1f} ms, of which the bare interpreter (`-X importtime -c pass`) "
            f"{imp_bare:.1f} ms. Largest cumulative entries:",
            "",
            imp_table,
            "",
            *imp_notes,
        ]
    )
    if args.no_write:
        print(body)
    else:
        write_section("Commit-msg hook", body)
        print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
