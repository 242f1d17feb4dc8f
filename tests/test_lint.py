"""devkit lint: the real ruff over real repositories (changed files, --all, --fix, staged, paths)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitrepo import Repo
from tests.prrepo import RUFF_NOTE, clone, devkit, upstream


@pytest.fixture
def branch(tmp_path: Path) -> Repo:
    """feat/x off main; main has an old lint error that a change-based lint must not report."""
    up = upstream(tmp_path)
    up.commit("chore: legacy", {"src/legacy.py": "import sys\n", "generated/gen.py": "import os\n"})
    up.git("checkout", "-q", "-b", "feat/x")
    return up


def codes(p) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    (check,) = json.loads(p.stdout)["checks"]
    return [(v["code"], v["location"]["file"]) for v in check["violations"]]


def test_changed_files_only_with_rule_file_line_col(branch: Repo) -> None:
    branch.commit("feat: x", {"src/x.py": "import os\n\n\ndef f():\n    return 1\n"})
    p = devkit(branch, "lint", "--base", "main")
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        "src/x.py:1:8: error F401 [unused-import] `os` imported but unused",
        "    hint: Run `devkit lint --fix`.",
        f"lint: note: {RUFF_NOTE}",
        "devkit: 1 error(s), 0 warning(s) (1 file checked)",
    ]


def test_uncommitted_and_untracked_changes_count_locally(branch: Repo) -> None:
    branch.write("src/app.py", "x=1\n")  # modified, not staged
    branch.write("src/new.py", "import json\n")  # untracked
    p = devkit(branch, "lint", "--base", "main", "--format", "json")
    assert codes(p) == [("FMT", "src/app.py"), ("F401", "src/new.py")]


def test_default_base_is_the_default_branch(branch: Repo) -> None:
    branch.commit("feat: x", {"src/x.py": "import os\n"})
    p = devkit(branch, "lint", "--format", "json")  # no origin: falls back to `main`
    assert codes(p) == [("F401", "src/x.py")]


def test_deleted_renamed_non_python_and_excluded_files(branch: Repo) -> None:
    branch.git("rm", "-q", "src/app.py")
    branch.git("mv", "src/legacy.py", "src/renamed.py")
    branch.commit(
        "refactor: shuffle",
        {"README.md": "import os\n", "generated/new.py": "import os\n", "notes.txt": "x=1\n"},
    )
    p = devkit(branch, "lint", "--base", "main", "--format", "json")
    # the renamed file is linted under its new name; deleted, non-Python and excluded files are not
    assert codes(p) == [("F401", "src/renamed.py")]
    assert p.returncode == 1
    assert json.loads(p.stdout)["checks"][0]["checked"] == 1


def test_empty_change_is_not_an_error(branch: Repo) -> None:
    p = devkit(branch, "lint", "--base", "main")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "lint: note: no Python files to lint (changed since `main`)",
        "devkit: all good",
    ]
    branch.commit("docs: readme", {"README.md": "hi\n", "generated/x.py": "import os\n"})
    p = devkit(branch, "lint", "--base", "main")
    assert p.returncode == 0 and "no Python files to lint" in p.stdout


def test_all_uses_ruffs_own_file_discovery(branch: Repo) -> None:
    p = devkit(branch, "lint", "--all", "--format", "json")
    assert codes(p) == [("F401", "src/legacy.py")]  # generated/ is excluded by the ruff config
    assert json.loads(p.stdout)["checks"][0]["checked"] == 2


def test_fix_applies_safe_fixes_and_format_then_reports_the_rest(branch: Repo) -> None:
    branch.commit("feat: x", {"src/x.py": "import os\nx=1\ndef f():\n    return undefined_name\n"})
    p = devkit(branch, "lint", "--base", "main", "--fix")
    assert p.returncode == 1
    assert (
        branch.path / "src/x.py"
    ).read_text() == "x = 1\n\n\ndef f():\n    return undefined_name\n"
    assert p.stdout.splitlines() == [
        "src/x.py:5:12: error F821 [undefined-name] Undefined name `undefined_name`",
        "    hint: See https://docs.astral.sh/ruff/rules/undefined-name",
        f"lint: note: {RUFF_NOTE}",
        "lint: note: applied ruff's safe fixes and formatting; what is left is below",
        "devkit: 1 error(s), 0 warning(s) (1 file checked)",
    ]


def test_staged_mode_and_pre_commit_environment(branch: Repo) -> None:
    branch.write("src/staged.py", "import os\n")
    branch.write("src/unstaged.py", "import os\n")
    branch.git("add", "src/staged.py")
    assert codes(devkit(branch, "lint", "--staged", "--format", "json")) == [
        ("F401", "src/staged.py")
    ]
    p = devkit(branch, "lint", "--format", "json", env={"PRE_COMMIT": "1"})
    assert codes(p) == [("F401", "src/staged.py")]


def test_explicit_paths_as_pre_commit_passes_them(branch: Repo) -> None:
    branch.write("src/a.py", "import os\n")
    branch.write("docs/b.md", "text\n")
    p = devkit(branch, "lint", "src/a.py", "docs/b.md", "generated/gen.py", "--format", "json")
    assert codes(p) == [("F401", "src/a.py")]
    p = devkit(branch, "lint", "src/a.py", cwd=branch.path)
    assert p.returncode == 1
    p = devkit(branch, "lint", "a.py", cwd=branch.path / "src")  # relative to the current directory
    assert p.returncode == 1 and "src/a.py:1:8" in p.stdout


def test_syntax_error_is_reported_once(branch: Repo) -> None:
    branch.commit("feat: x", {"src/x.py": "def f(:\n"})
    p = devkit(branch, "lint", "--base", "main", "--format", "json")
    assert [c for c, _ in codes(p)] == ["invalid-syntax", "invalid-syntax"]  # no FMT on top


def test_github_format(branch: Repo, tmp_path: Path) -> None:
    branch.commit("feat: x", {"src/x.py": "x=1\n"})
    summary = tmp_path / "s.md"
    p = devkit(
        branch,
        "lint",
        "--base",
        "main",
        "--format",
        "github",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        "::error file=src/x.py,line=1,col=2,title=devkit FMT unformatted::`src/x.py` would be reformatted "
        "by `ruff format` — Run `devkit lint --fix` (or `ruff format src/x.py`).",
        f"::notice title=devkit lint::{RUFF_NOTE}",
        "devkit: 1 error(s), 0 warning(s) (1 file checked)",
    ]
    assert "| lint | ❌ fail | 1 | 1 | 0 |" in summary.read_text()


def test_ruff_problems_are_one_line(branch: Repo) -> None:
    branch.commit("feat: x", {"src/x.py": "X = 1\n"})
    p = devkit(branch, "lint", "--base", "main", env={"DEVKIT_RUFF": "/nonexistent/ruff"})
    assert p.returncode == 1 and "Traceback" not in p.stdout + p.stderr
    assert p.stdout.splitlines()[0].startswith(
        "lint: error: ruff could not be started: /nonexistent/ruff"
    )
    branch.write(
        "pyproject.toml",
        (branch.path / "pyproject.toml").read_text() + "\n[tool.ruff.lint]\nselect = 3\n",
    )
    p = devkit(branch, "lint", "--base", "main")
    assert p.returncode == 1 and "Traceback" not in p.stdout + p.stderr
    assert p.stdout.startswith("lint: error: `ruff check --show-files` failed (exit code 2):")


def test_usage_errors(branch: Repo) -> None:
    p = devkit(branch, "lint", "--base", "origin/nope")
    assert p.returncode == 2
    assert p.stderr.startswith("devkit: error: base ref `origin/nope` does not exist here")
    p = devkit(branch, "lint", "missing.py")
    assert (p.returncode, p.stderr) == (2, "devkit: error: no such file or directory: missing.py\n")
    branch.write(
        "pyproject.toml",
        (branch.path / "pyproject.toml").read_text() + "\n[tool.devkit.lint]\nbsae = 'x'\n",
    )
    p = devkit(branch, "lint")
    assert p.returncode == 2 and "tool.devkit.lint.bsae: unknown key" in p.stderr


def test_shallow_clone_without_the_base_is_a_clear_error(branch: Repo, tmp_path: Path) -> None:
    branch.commit("feat: x", {"src/x.py": "import os\n"})
    work = clone(branch, tmp_path / "shallow", "--depth", "1", "--branch", "feat/x")
    p = devkit(work, "lint", "--base", "origin/main")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == (
        "devkit: error: base ref `origin/main` does not exist here (this is a shallow clone); nothing "
        "was checked (`git fetch` the base first, or check out with `fetch-depth: 0`)\n"
    )
    work.git("fetch", "-q", "--depth=1", "origin", "+refs/heads/main:refs/remotes/origin/main")
    p = devkit(work, "lint", "--base", "origin/main")
    assert p.returncode == 2 and "have no merge base because the clone is shallow" in p.stderr
