"""The examples in README.md and docs/ that show output, so that none can go stale.

An example is a ```console block: lines that start with `$ ` are commands, the lines after each are
what it prints (standard output and error, as a terminal shows them). `...` in the shown output
stands for any text, on one line or across lines (doctest's ELLIPSIS): times, pids, counts.

Each example is either
- run by tests/test_docs.py: every command, in order, in a fresh git repository of its own (this
  project's test config, tests/gitrepo.py) with `devkit` on PATH; an HTML comment
  `<!-- example setup: COMMANDS -->` right before the block runs COMMANDS there first, unshown;
- or claimed by the test that produces its output on real hosts (a provisioning run needs a sandbox
  or hosts, which this harness has not): `<!-- example KEY checked by tests/FILE.py::TEST -->`
  right before the block, and that test calls `compare("KEY", outputs)` with the output of each of
  the block's commands. tests/test_docs.py checks that the named test exists and makes that call.
A console block that is neither run nor claimed fails tests/test_docs.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
CLAIM = re.compile(r"<!-- example (?P<key>[a-z0-9-]+) checked by (?P<test>\S+\.py::\w+) -->")
SETUP = re.compile(r"<!-- example setup: (?P<commands>.+?) -->", re.DOTALL)
FENCE = re.compile(r"^(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")


class Step(NamedTuple):
    command: str
    output: str  # the lines shown after it


class Example(NamedTuple):
    path: Path
    line: int  # of the opening fence, 1-based
    steps: tuple[Step, ...]
    key: str = ""  # claimed: its key
    test: str = ""  # claimed: tests/FILE.py::TEST
    setup: str = ""  # run: shell commands before the first step

    @property
    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


class Block(NamedTuple):
    path: Path
    line: int
    info: str  # the fence's info string: "console", "sh", ...
    text: str
    before: str  # the paragraph right before the fence (where a claim or setup comment sits)


def pages() -> list[Path]:
    """Every page examples may be in."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        start, close = i, m["fence"]
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(close)),
            len(lines),
        )
        back = start
        while back > 0 and lines[back - 1].strip():
            back -= 1
        before = "\n".join(lines[back:start])
        body = "\n".join(lines[start + 1 : end])
        out.append(Block(path, start + 1, m["info"].strip(), body, before))
        i = end + 1
    return out


def steps(text: str) -> tuple[Step, ...]:
    out: list[Step] = []
    command: str | None = None
    shown: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                out.append(Step(command, "\n".join(shown)))
            command, shown = line[2:], []
        elif command is None:
            raise ValueError(f"output before the first `$ ` command: {line!r}")
        else:
            shown.append(line)
    if command is not None:
        out.append(Step(command, "\n".join(shown)))
    return tuple(out)


def examples(paths: list[Path] | None = None) -> list[Example]:
    """Every console block of the pages, as examples."""
    out = []
    for path in pages() if paths is None else paths:
        for b in blocks(path):
            if b.info != "console":
                continue
            claim, setup = CLAIM.search(b.before), SETUP.search(b.before)
            ex = Example(path, b.line, steps(b.text), setup=setup["commands"] if setup else "")
            if claim:
                ex = ex._replace(key=claim["key"], test=claim["test"])
            out.append(ex)
    return out


def normal(text: str) -> str:
    """Output as compared: no trailing blanks on a line, no blank lines at the end."""
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n")


def matches(shown: str, actual: str) -> bool:
    """Does `actual` read as `shown`, where `...` in `shown` stands for any text, and a line of
    just `...` for any lines, none included?"""
    pattern = "".join(
        r"(?:.*?\n)?"
        if line == "..."
        else ".*?".join(re.escape(part) for part in line.split("...")) + r"\n"
        for line in normal(shown).split("\n")
    )
    return re.fullmatch(pattern, normal(actual) + "\n", re.DOTALL) is not None


def claimed(key: str) -> Example:
    """The example a test claims by its key."""
    found = [ex for ex in examples() if ex.key == key]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} examples are claimed as {key!r} in README.md and docs/")
    return found[0]


def compare(key: str, outputs: list[str], names: dict[str, str] | None = None) -> None:
    """The real output of each of the claimed example's commands reads as the page shows it.

    `names` maps what differs only by the test's set-up to what the page shows: the test's host
    names (whole words) and paths (`{"tx": "sandbox"}`)."""
    ex = claimed(key)
    assert len(outputs) == len(ex.steps), (
        f"{ex.where}: the example has {len(ex.steps)} command(s), the test gave {len(outputs)}"
    )
    for step, actual in zip(ex.steps, outputs, strict=True):
        for name, shown in sorted((names or {}).items(), key=lambda kv: -len(kv[0])):
            word = (
                r"\b" + re.escape(name) + r"\b" if re.fullmatch(r"\w+", name) else re.escape(name)
            )
            actual = re.sub(word, shown.replace("\\", r"\\"), actual)
        assert matches(step.output, actual), (
            f"{ex.where}: `$ {step.command}` shows\n{step.output}\n\nbut printed\n{actual}"
        )


def prepared_repo(where: Path) -> tuple[Path, dict[str, str]]:
    """A fresh repository as the run examples start from: this project's test config and one
    commit on `main`; the directory to run commands in, and their environment (`devkit`, this
    interpreter's, on PATH)."""
    import os
    import sys

    from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

    repo = Repo.init(where / "repo", where / "home")
    repo.commit(
        "chore: initial commit",
        {"pyproject.toml": PYPROJECT_CONVENTIONAL, "changes/README.md": "fragments\n"},
    )
    bin_dir = where / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "devkit"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m devkit "$@"\n')
    shim.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return repo.path, {**repo.env, "PATH": path, "PYTHONUNBUFFERED": "1"}


def run(ex: Example, where: Path) -> list[str]:
    """Each command's output (standard output and error as one stream), run in a prepared
    repository under `where`."""
    import subprocess

    cwd, env = prepared_repo(where)

    def sh(command: str) -> str:
        p = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        return p.stdout

    if ex.setup:
        sh(ex.setup)
    return [sh(step.command) for step in ex.steps]


if __name__ == "__main__":  # what each run example prints now: python -m tests.docs_examples [PAGE]
    import sys
    import tempfile

    chosen = [Path(p).resolve() for p in sys.argv[1:]] or None
    for ex in examples(chosen):
        if ex.key:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            outputs = run(ex, Path(tmp))
        ok = all(matches(s.output, o) for s, o in zip(ex.steps, outputs, strict=True))
        print(f"== {ex.where} {'ok' if ok else 'DIFFERS'}")
        for step, out in zip(ex.steps, outputs, strict=True):
            print(f"$ {step.command}\n{normal(out)}")
