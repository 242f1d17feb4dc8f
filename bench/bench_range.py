"""Range check speed and recall: `devkit check commit --range base..HEAD` over a generated 5,000-commit history
side by side with `cz check --rev-range`, `gitlint --commits`, `commitlint --from --to` and the floor
(one `git log` plus a regex per message, bench/floor.py).

    /work/venv/bin/python bench/bench_range.py [--runs 10] [--commits 5000] [--gitlint-commits N] [--no-write]

The generator (commit-conventions.md §4b) is deterministic and knows the verdict of every message, so each
tool's findings are compared with the truth. Writes the `## Range check (5,000 commits)` section of
bench/RESULTS.md. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH,
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

RANGE_REPO = WORK / "range-repo"
SEED = 20261129
INVALID_SHARE = 0.213

# verdicts: "spec" = breaks Conventional Commits 1.0.0 itself; "type" = a well-formed header whose type is not in
# the usual list (build chore ci docs feat fix perf refactor revert style test; devkit's `conventional` preset,
# config-conventional, cz, CT1); "case" = legal under the spec AND in the list case-insensitively, rejected only
# by tools that demand lower-case types / subjects and no full stop; "ok" = valid everywhere.
KINDS: dict[str, str] = {
    "update": "spec",  # Update file_12.txt
    "fixed": "spec",  # Fixed bug in the parser…
    "nospace": "spec",  # fix:handle x
    "feature": "type",  # feature: add x
    "capital": "case",  # Feat: Add X.
    "noblank": "spec",  # body right under the header
    "wip": "spec",  # WIP
    "noparen": "spec",  # fix(parser) handle x
}
TYPES = [
    ("feat", 30),
    ("fix", 30),
    ("docs", 8),
    ("refactor", 8),
    ("test", 6),
    ("chore", 6),
    ("ci", 3),
    ("build", 3),
    ("perf", 3),
    ("style", 2),
    ("revert", 1),
]
SCOPES = ["parser", "cli", "api", "git", "hooks", "config", "news", "output"]
VERBS = [
    "add",
    "handle",
    "support",
    "remove",
    "rename",
    "cache",
    "document",
    "simplify",
    "speed up",
    "reject",
]
NOUNS = [
    "empty scopes",
    "footer tokens",
    "the scissors line",
    "merge commits",
    "CRLF input",
    "long headers",
    "branch names",
    "json output",
    "unborn branches",
    "revert commits",
    "trailers",
    "the BOM",
]
BODY_LINES = [
    "The old code path read every message twice and rebuilt it from subject and body.",
    "This keeps the raw message, so trailers and blank lines survive as git stored them.",
    "Nothing changes for users who never set core.commentChar to auto.",
    "A follow-up will cover the remaining cases reported in the tracker.",
    "The benchmark shows no measurable difference on the 5,000-commit corpus.",
    "Tests cover the happy path and the three edge cases from the review.",
]


class Msg(NamedTuple):
    kind: str  # "ok" or one of KINDS
    verdict: str  # "ok" | "spec" | "type" | "case"
    text: str


def body(rng: random.Random) -> str:
    paras = []
    for _ in range(rng.choice((1, 1, 2))):
        paras.append("\n".join(rng.sample(BODY_LINES, rng.choice((1, 2, 3)))))
    return "\n\n".join(paras)


def footers(rng: random.Random, breaking: bool) -> str:
    pool = [
        f"Refs: #{rng.randint(1, 999)}",
        "Reviewed-by: Jane Doe <jane@example.com>",
        f"Closes #{rng.randint(1, 999)}",
        "Co-authored-by: Max Muster <max@example.com>",
        "Acked-by: Release Team\n  with a value that continues on the next line",
    ]
    out = rng.sample(pool, rng.choice((1, 1, 2)))
    if breaking:
        out.append(
            rng.choice(
                (
                    "BREAKING CHANGE: the `--all` flag is gone; use `--range`",
                    "BREAKING-CHANGE: config key `types` must be a list",
                )
            )
        )
    return "\n".join(out)


def message(i: int, rng: random.Random) -> Msg:
    noun, verb = rng.choice(NOUNS), rng.choice(VERBS)
    desc = f"{verb} {noun} ({i})"
    with_body = rng.random() < 0.40
    if rng.random() < INVALID_SHARE:
        kind = rng.choice(list(KINDS))
        header = {
            "update": f"Update file_{i % 50}.txt",
            "fixed": f"Fixed bug in {noun}…",
            "nospace": f"fix:{desc}",
            "feature": f"feature: {desc}",
            "capital": f"Feat: {desc[0].upper()}{desc[1:]}.",
            "noblank": f"fix({rng.choice(SCOPES)}): {desc}",
            "wip": "WIP",
            "noparen": f"fix({rng.choice(SCOPES)}) {desc}",
        }[kind]
        if kind == "noblank":
            text = header + "\n" + body(rng) + "\n"
        else:
            text = header + "\n" + ("\n" + body(rng) + "\n" if with_body else "")
        return Msg(kind, KINDS[kind], text)
    typ = rng.choices([t for t, _ in TYPES], [w for _, w in TYPES])[0]
    scope = f"({rng.choice(SCOPES)})" if rng.random() < 0.5 else ""
    bang = "!" if rng.random() < 0.03 else ""
    parts = [f"{typ}{scope}{bang}: {desc}"]
    if with_body:
        parts.append(body(rng))
    if rng.random() < 0.15:
        parts.append(footers(rng, breaking=bool(bang) and rng.random() < 0.5))
    return Msg("ok", "ok", "\n\n".join(parts) + "\n")


def build_repo(n: int) -> tuple[list[Msg], dict[str, int], float]:
    """Root commit + n linear commits via `git fast-import`; returns the messages, sha -> index, build seconds."""
    t0 = time.perf_counter()
    rng = random.Random(SEED)
    msgs = [message(i, rng) for i in range(n)]
    if RANGE_REPO.exists():
        shutil.rmtree(RANGE_REPO)
    RANGE_REPO.mkdir(parents=True)

    def git(*args: str, data: bytes | None = None) -> str:
        r = subprocess.run(
            ["git", *args], cwd=RANGE_REPO, input=data, capture_output=True, check=True
        )
        return r.stdout.decode()

    git("init", "-q", "-b", "main")
    stream = bytearray()

    def blob(text: str) -> None:
        b = text.encode()
        stream.extend(b"data %d\n" % len(b) + b + b"\n")

    when = 1_764_000_000
    for i, text in enumerate(["chore: start the sample project\n", *(m.text for m in msgs)]):
        stream.extend(b"commit refs/heads/main\nmark :%d\n" % (i + 1))
        stamp = f"Bench <bench@example.invalid> {when + 60 * i} +0000\n".encode()
        stream.extend(b"author " + stamp + b"committer " + stamp)
        blob(text)
        stream.extend(b"M 100644 inline file_%d.txt\n" % (i % 50))
        blob(f"line {i}\n")
    stream.extend(b"reset refs/tags/base\nfrom :1\n\n")
    git("fast-import", "--quiet", data=bytes(stream))
    git("checkout", "-q", "main")
    git("config", "user.name", "Bench")
    git("config", "user.email", "bench@example.invalid")
    # every tool's minimal documented config, as in the hook benchmark; committed as one more valid commit?
    # No: kept untracked so the range stays exactly n commits (tools read config from the work tree).
    (RANGE_REPO / "pyproject.toml").write_text(
        '[project]\nname = "sample"\nversion = "0"\n\n[tool.devkit]\npreset = "conventional"\n'
    )
    (RANGE_REPO / ".gitlint").write_text("[general]\ncontrib=contrib-title-conventional-commits\n")
    (RANGE_REPO / "commitlint.config.mjs").write_text(
        "export default { extends: ['@commitlint/config-conventional'] };\n"
    )
    shas = git("log", "--reverse", "--format=%H", "base..HEAD").split()
    assert len(shas) == n, (len(shas), n)
    return msgs, {s: i for i, s in enumerate(shas)}, time.perf_counter() - t0


# --- what each tool flagged -----------------------------------------------------------------


class Found(NamedTuple):
    errors: set[int]  # commit indexes with at least one error
    warnings_only: set[int]
    note: str = ""


def by_sha(shas: dict[str, int], text: str, pattern: str) -> set[int]:
    out: set[int] = set()
    for m in re.finditer(pattern, text):
        key = m.group(1)
        if len(key) == 40:
            if key in shas:
                out.add(shas[key])
        else:
            out.update(i for s, i in shas.items() if s.startswith(key))
    return out


def parse_devkit(shas: dict[str, int], out: str) -> Found:
    data = json.loads(out)
    err: set[int] = set()
    warn: set[int] = set()
    codes: Counter[str] = Counter()
    for check in data["checks"]:
        for v in check["violations"]:
            i = shas.get(v["location"]["commit"] or "")
            if i is None:
                continue
            codes[f"{v['code']} {v['name']}"] += 1
            (err if v["severity"] == "error" else warn).add(i)
    note = "violations: " + ", ".join(f"{k} ×{n}" for k, n in codes.most_common())
    return Found(err, warn - err, note)


def parse_commitlint(msgs: list[Msg], out: str) -> Found:
    """commitlint prints `⧗ input: <header>` per failing commit, no SHA: match headers back to the corpus."""
    pool: dict[str, list[int]] = {}
    for i, m in enumerate(msgs):
        pool.setdefault(m.text.split("\n", 1)[0], []).append(i)
    err: set[int] = set()
    warn: set[int] = set()
    unmatched = 0
    for block in re.split(r"^⧗ +input: ", out, flags=re.M)[1:]:
        header = block.split("\n", 1)[0].rstrip()
        cands = pool.get(header)
        if not cands:
            unmatched += 1
            continue
        i = cands.pop(0)
        (err if re.search(r"^✖ +.*\[[a-z-]+\]$", block, re.M) else warn).add(i)
    blocks = len(err) + len(warn) + unmatched
    note = f"{blocks:,} reports printed, {unmatched:,} not matched to a commit by header"
    return Found(err, warn, note)


# --- main ------------------------------------------------------------------------------------


def recall_cells(f: Found, msgs: list[Msg]) -> list[str]:
    want = {
        v: {i for i, m in enumerate(msgs) if m.verdict == v} for v in ("spec", "type", "case", "ok")
    }
    flagged = f.errors
    return [
        f"{len(flagged):,}",
        f"{len(flagged & want['spec']):,} / {len(want['spec']):,}",
        f"{len(flagged & want['type']):,} / {len(want['type']):,}",
        f"{len(flagged & want['case']):,} / {len(want['case']):,}",
        f"{len(flagged & want['ok']):,}",
        f"{len(f.warnings_only):,}",
    ]


JSON_LABEL = "devkit check commit --range --format json (console script)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--devkit-python",
        default=default_devkit_python(),
        help="the interpreter devkit is installed in",
    )
    ap.add_argument(
        "--commits", type=int, default=5000, help="commits after the root (default 5000)"
    )
    ap.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up rounds (default 1)")
    ap.add_argument(
        "--gitlint-commits",
        type=int,
        default=0,
        help="run gitlint once on the last N commits only (default: once on the whole range, ~2 min)",
    )
    ap.add_argument(
        "--no-gitlint-full",
        action="store_true",
        help="skip gitlint's single run on the large range",
    )
    ap.add_argument(
        "--no-install", action="store_true", help="use only the tools already in bench/.work/"
    )
    ap.add_argument(
        "--no-write",
        action="store_true",
        help="print the section instead of writing bench/RESULTS.md",
    )
    args = ap.parse_args()
    py = args.devkit_python
    started = machine()
    if not Path(py).exists():
        log(f"no interpreter at {py}: pass --devkit-python")
        return 2
    tools: Tools = ensure_tools(install=not args.no_install)
    log(f"generating {args.commits:,} commits with git fast-import in {RANGE_REPO}")
    msgs, shas, build_s = build_repo(args.commits)
    if tools.node_modules:
        (RANGE_REPO / "node_modules").symlink_to(tools.node_modules)
    counts = Counter(m.kind for m in msgs)
    verdicts = Counter(m.verdict for m in msgs)
    git_size = sum(f.stat().st_size for f in (RANGE_REPO / ".git").rglob("*") if f.is_file())
    log(f"built in {build_s:.1f} s: {dict(counts)}")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
        "NO_COLOR": "1"
    }
    cwd = str(RANGE_REPO)
    script = str(Path(py).parent / "devkit")
    floor = str(BENCH / "floor.py")

    def cmds(rng: str, with_gitlint: bool) -> list[Cmd]:
        a, b = rng.split("..")
        out = [
            Cmd(
                "git log -z --format=%H%x00%B (git alone)",
                ["git", "log", "-z", "--format=%H%x00%B", rng, "--"],
                cwd,
            ),
            Cmd(
                "floor: bench/floor.py (one git log + one regex per message)", [py, floor, rng], cwd
            ),
            Cmd(
                "devkit check commit --range (console script)",
                [script, "check", "commit", "--range", rng],
                cwd,
            ),
            Cmd(
                "python -m devkit check commit --range",
                [py, "-m", "devkit", "check", "commit", "--range", rng],
                cwd,
            ),
            Cmd(
                JSON_LABEL,
                [script, "check", "commit", "--range", rng, "--format", "json"],
                cwd,
            ),
        ]
        if tools.cz:
            out.append(Cmd("cz check --rev-range", [tools.cz, "check", "--rev-range", rng], cwd))
        if tools.commitlint:
            out.append(
                Cmd(
                    "commitlint --from --to (config-conventional)",
                    [tools.commitlint, "--from", a, "--to", b],
                    cwd,
                )
            )
        if tools.gitlint and with_gitlint:
            out.append(
                Cmd("gitlint --commits (default + CT1)", [tools.gitlint, "--commits", rng], cwd)
            )
        return out

    big, small = "base..HEAD", "HEAD~50..HEAD"
    big_cmds, small_cmds = cmds(big, False), cmds(small, True)
    small_stats = {
        s.label: s for s in measure(small_cmds, args.runs, args.warmup, "50 commits", env)
    }
    big_stats = {
        s.label: s
        for s in measure(big_cmds, args.runs, args.warmup, f"{args.commits:,} commits", env)
    }

    # gitlint: ~24 ms per commit, so one run on the whole range (or on a slice when asked)
    gl_label = "gitlint --commits (default + CT1)"
    gl_run: tuple[str, float, str, int] | None = None
    if tools.gitlint and not args.no_gitlint_full:
        n = args.gitlint_commits or args.commits
        rng = big if n >= args.commits else f"HEAD~{n}..HEAD"
        log(f"gitlint --commits {rng}: one run (about {n * 0.024:.0f} s)")
        t0 = time.perf_counter()
        r = subprocess.run(
            [tools.gitlint, "--commits", rng],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        gl_run = (rng, time.perf_counter() - t0, r.stdout + r.stderr, r.returncode)

    # one captured run per tool for what it found
    log("one captured run per tool on the whole range to count what each found")
    found: dict[str, Found] = {}
    rc: dict[str, int] = {}

    def capture(argv: list[str]) -> tuple[int, str]:
        # output through a file, not a pipe: a Node process that exits right after writing can lose the tail
        # of a large report written to a pipe
        out_file = WORK / "capture.out"
        with out_file.open("wb") as fh:
            code = subprocess.run(
                argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False
            ).returncode
        return code, out_file.read_text(encoding="utf-8", errors="replace")

    r = subprocess.run(
        [script, "check", "commit", "--range", big, "--format", "json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    code = r.returncode
    try:
        devkit_found = parse_devkit(shas, r.stdout)
    except (ValueError, KeyError, TypeError):
        why = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[0]
        log(f"devkit --format json gave no report: {why}")
        devkit_found = Found(set(), set(), f"FAILED to run (exit {code}): {why}")
    found["devkit check commit --range (console script)"] = devkit_found
    rc["devkit check commit --range (console script)"] = code
    rc[JSON_LABEL] = code
    rc["python -m devkit check commit --range"], _ = capture(
        [py, "-m", "devkit", "check", "commit", "--range", big]
    )
    code, out = capture([py, floor, big])
    found["floor: bench/floor.py (one git log + one regex per message)"] = Found(
        by_sha(shas, out, r"(?m)^([0-9a-f]{40})$"), set()
    )
    rc["floor: bench/floor.py (one git log + one regex per message)"] = code
    rc["git log -z --format=%H%x00%B (git alone)"] = 0
    if tools.cz:
        code, out = capture([tools.cz, "check", "--rev-range", big])
        found["cz check --rev-range"] = Found(by_sha(shas, out, r"commit \"?([0-9a-f]{40})"), set())
        rc["cz check --rev-range"] = code
    if tools.commitlint:
        code, out = capture([tools.commitlint, "--from", "base", "--to", "HEAD"])
        found["commitlint --from --to (config-conventional)"] = parse_commitlint(msgs, out)
        rc["commitlint --from --to (config-conventional)"] = code
    gl_found: Found | None = None
    if gl_run:
        gl_found = Found(by_sha(shas, gl_run[2], r"(?m)^Commit ([0-9a-f]{7,40}):"), set())

    # --- report -------------------------------------------------------------------------------
    flo_big = big_stats["floor: bench/floor.py (one git log + one regex per message)"]
    flo_small = small_stats["floor: bench/floor.py (one git log + one regex per message)"]
    dk_label = "devkit check commit --range (console script)"
    rows = []
    for c in small_cmds:
        s50 = small_stats[c.label]
        sb: Stats | None = big_stats.get(c.label)
        if sb:
            big_cells = [
                wall_cell(sb),
                ms(sb.cpu_median),
                mib(sb.maxrss_kib),
                ratio(sb.median, flo_big.median),
                ratio(sb.median, big_stats[dk_label].median),
                str(rc.get(c.label, "?")),
            ]
        elif c.label == gl_label and gl_run:
            what = "whole range" if gl_run[0] == big else f"`{gl_run[0]}` only"
            big_cells = [
                f"{gl_run[1] * 1000:,.0f} (1 run, {what})",
                "–",
                "–",
                ratio(gl_run[1], flo_big.median),
                ratio(gl_run[1], big_stats[dk_label].median),
                str(gl_run[3]),
            ]
        else:
            big_cells = ["not run", "–", "–", "–", "–", "–"]
        rows.append([c.label, wall_cell(s50), ratio(s50.median, flo_small.median), *big_cells])
    speed = table(
        [
            "command",
            "50: wall ms median (min–max)",
            "50: x floor",
            f"{args.commits:,}: wall ms median (min–max)",
            "CPU ms",
            "peak RSS",
            "x floor",
            "x devkit",
            "exit",
        ],
        rows,
    )

    results: list[tuple[str, Found, list[Msg]]] = [(label, f, msgs) for label, f in found.items()]
    if gl_found is not None and gl_run:
        sub = msgs if gl_run[0] == big else msgs[-int(gl_run[0].split("~")[1].split("..")[0]) :]
        off = len(msgs) - len(sub)
        results.append(
            (f"{gl_label} on `{gl_run[0]}`", Found({i - off for i in gl_found.errors}, set()), sub)
        )
    frows = [[label, *recall_cells(f, sub)] for label, f, sub in results]
    kind_rows = []
    for label, f, sub in results:
        per = Counter(sub[i].kind for i in f.errors)
        tot = Counter(m.kind for m in sub)
        warn = Counter(sub[i].kind for i in f.warnings_only)
        kind_rows.append(
            [
                label,
                *(
                    f"{per[k]:,}/{tot[k]:,}" + (f" (+{warn[k]} warn)" if warn[k] else "")
                    for k in [*KINDS, "ok"]
                ),
            ]
        )
    by_kind = table(["tool", *(f"`{k}`" for k in KINDS), "valid"], kind_rows)
    recall = table(
        [
            "tool",
            "commits flagged (error)",
            "spec-invalid found",
            "bad-type found",
            "case-only flagged",
            "valid flagged",
            "warnings only",
        ],
        frows,
    )

    dk = big_stats[dk_label]
    js = big_stats[JSON_LABEL]
    dk_ratio = dk.median / flo_big.median
    want = {i for i, m in enumerate(msgs) if m.verdict in ("spec", "type")}
    fine = {i for i, m in enumerate(msgs) if m.verdict in ("ok", "case")}
    missed = sorted(want - devkit_found.errors)
    extra = sorted(devkit_found.errors & fine)
    examples = []
    for label, idx in (
        ("missed (invalid, not flagged)", missed),
        ("flagged although valid", extra),
    ):
        first_of_kind: dict[str, int] = {}
        for i in idx:
            first_of_kind.setdefault(msgs[i].kind, i)
        for kind, i in first_of_kind.items():
            n = sum(1 for j in idx if msgs[j].kind == kind)
            examples.append(
                f"- devkit {label}: {n} × kind `{kind}`, e.g. commit {i + 1}: `{msgs[i].text!r}`"
            )
    versions = tool_versions(py, tools)
    skipped = [f"- {k}: skipped ({why})" for k, why in tools.skipped.items()]
    kinds_line = ", ".join(f"`{k}` {counts[k]:,} ({KINDS[k]})" for k in KINDS)
    gl_note = ""
    if gl_run and gl_run[0] != big:
        gl_note = f" gitlint ran once on `{gl_run[0]}` only (--gitlint-commits); its recall row is over that slice."

    body = "\n".join(
        [
            f"Measured {today()} by `bench/bench_range.py` ({args.runs} interleaved rounds after {args.warmup} warm-up per "
            f"range; gitlint, about 24 ms per commit, once on the {args.commits:,}-commit range and in the rounds on the "
            f"50-commit range).{gl_note}",
            "",
            f"Machine: {started}.",
            "",
            "Versions: " + "; ".join(f"{k} {val}" for k, val in versions.items()) + ".",
            "",
            f"Corpus (commit-conventions.md §4b recipe, seed {SEED}): root commit + {args.commits:,} linear commits built "
            f"with `git fast-import` in {build_s:.1f} s (`.git` {git_size / 2**20:.1f} MiB), one small file change each; "
            f"valid messages weighted feat/fix, 50 % scoped, 3 % `!`, 40 % with a body, 15 % with footers (`Refs:`, "
            f"`Closes #N`, `Reviewed-by:`, a multi-line value, `BREAKING CHANGE:` / `BREAKING-CHANGE:`). "
            f"{args.commits - counts['ok']:,} messages ({(args.commits - counts['ok']) / args.commits:.1%}) are of the "
            f"§4b bad kinds: {kinds_line}. Truth per message: **spec** = breaks Conventional Commits 1.0.0 "
            f"({verdicts['spec']:,}); **bad-type** = well-formed, type not in build/chore/ci/docs/feat/fix/perf/"
            f"refactor/revert/style/test ({verdicts['type']:,}); **case-only** = `Feat: Add X.`, legal under the spec "
            f"(types are case-insensitive, any subject case, a full stop is allowed) and in the list, rejected only by "
            f"tools with case rules ({verdicts['case']:,}). So {verdicts['spec'] + verdicts['type']:,} commits should "
            f"fail a checker with the usual type list (devkit's `conventional` preset, the floor, cz, config-conventional, "
            f"CT1). Ranges: `base..HEAD` (`base` = tag on the root) and `HEAD~50..HEAD`. Configs as in the hook "
            f"benchmark (untracked files in the work tree).",
            "",
            table(
                ["kind", "count", "example header"],
                [
                    [
                        f"`{k}` ({KINDS[k]})",
                        f"{counts[k]:,}",
                        f"`{next(m.text for m in msgs if m.kind == k).splitlines()[0]}`",
                    ]
                    for k in KINDS
                ],
            ),
            "",
            "Speed (x floor = ratio to `bench/floor.py` on the same range; x devkit = ratio to devkit's console script):",
            "",
            speed,
            "",
            f'What each tool found on the {args.commits:,} commits (commits with at least one error; "x / y" = found / '
            "generated):",
            "",
            recall,
            "",
            "The same by kind (flagged with an error / generated; `+N warn` = flagged with warnings only):",
            "",
            by_kind,
            "",
            f"devkit {devkit_found.note}.",
            *(
                f"{label}: {f.note}."
                for label, f in found.items()
                if f.note and not label.startswith("devkit")
            ),
            "",
            *skipped,
            "Target (issue 3): devkit within 2x of the floor and every bad commit found:",
            "",
            f"- speed: devkit {dk_ratio:.2f}x the floor on {args.commits:,} commits (median {ms(dk.median)} ms vs "
            f"{ms(flo_big.median)} ms) → **{'met' if dk_ratio <= 2.0 else 'NOT met'}**; min vs min "
            f"{dk.lo / flo_big.lo:.2f}x, CPU median {dk.cpu_median / flo_big.cpu_median:.2f}x; on 50 commits "
            f"{small_stats[dk_label].median / flo_small.median:.2f}x (min vs min "
            f"{small_stats[dk_label].lo / flo_small.lo:.2f}x). Load average at the end: {load()}.",
            f"- recall: devkit flagged {len(want & devkit_found.errors):,} of the {len(want):,} spec-invalid and "
            f"bad-type commits and {len(extra):,} valid ones → **{'met' if not missed else 'NOT met'}**"
            + ("" if extra else " (no false positives)"),
            *examples,
            "",
            "Target (issue 18): `--format json` within 2x of the floor:",
            "",
            f"- {args.commits:,} commits: json {ms(js.median)} ms vs the floor {ms(flo_big.median)} ms, "
            f"**{js.median / flo_big.median:.2f}x** → **{'met' if js.median <= 2.0 * flo_big.median else 'NOT met'}**; "
            f"min vs min {js.lo / flo_big.lo:.2f}x, CPU median {js.cpu_median / flo_big.cpu_median:.2f}x.",
            "",
            "Target (issue 13): `--format json` within 1.2x of the text output on the same range:",
            "",
            f"- {args.commits:,} commits: json {ms(js.median)} ms vs text {ms(dk.median)} ms, "
            f"**{js.median / dk.median:.2f}x** → **{'met' if js.median <= 1.2 * dk.median else 'NOT met'}**; "
            f"min vs min {js.lo / dk.lo:.2f}x, CPU median {js.cpu_median / dk.cpu_median:.2f}x.",
        ]
    )
    if args.no_write:
        print(body)
    else:
        write_section("Range check (5,000 commits)", body)
        print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
