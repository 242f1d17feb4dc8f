"""devkit init: writes the conventions into a repository, merges pyproject.toml, never overwrites silently."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from devkit import __version__
from devkit.hooks import NEXT_STEP
from devkit.resources import templates_dir
from tests.gitrepo import Repo
from tests.prrepo import devkit

PYPROJECT = """\
# the project's own comment
[project]
name = "widget"  # keep me
version = "1.0"

[tool.ruff]
line-length = 90
"""
WRITTEN = [
    "pyproject.toml",
    "changes/README.md",
    "changes/template.md",
    ".pre-commit-config.yaml",
    ".github/workflows/devkit.yml",
]


@pytest.fixture
def target(tmp_path: Path) -> Repo:
    r = Repo.init(tmp_path / "widget", tmp_path / "home")
    r.git("remote", "add", "origin", "git@github.com:acme/widget.git")
    r.commit("chore: start", {"pyproject.toml": PYPROJECT, "src/widget.py": "X = 1\n"})
    return r


def test_fresh_backendai_setup_then_everything_works(target: Repo) -> None:
    p = devkit(target, "init", "--preset", "backend.ai")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:6] == [
        f"devkit init (backend.ai preset) in {target.path}:",
        "  update  pyproject.toml  (adds [tool.devkit]; adds [tool.towncrier])",
        "  create  changes/README.md",
        "  create  changes/template.md",
        "  create  .pre-commit-config.yaml",
        "  create  .github/workflows/devkit.yml",
    ]
    assert [line for line in p.stdout.splitlines() if line.startswith("wrote ")] == [
        f"wrote {w}" for w in WRITTEN
    ]
    text = (target.path / "pyproject.toml").read_text()
    assert text.startswith(PYPROJECT)  # comments, keys and their order kept; tables appended
    data = tomllib.loads(text)
    assert data["tool"]["devkit"] == {"preset": "backend.ai"}
    tc = data["tool"]["towncrier"]
    assert tc["directory"] == "changes" and tc["template"] == "changes/template.md"
    assert tc["issue_format"] == "([#{issue}](https://github.com/acme/widget/pull/{issue}))"
    assert [t["directory"] for t in tc["type"]] == [
        "breaking", "feature", "enhance", "deprecation", "fix", "doc", "deps", "misc", "test",
    ]  # fmt: skip
    readme = (target.path / "changes/README.md").read_text()
    assert "`changes/<PR number>.<type>.md`, for example `changes/1234.fix.md`." in readme
    assert "- `enhance`: Improvements\n" in readme and "One line, one English sentence" in readme
    workflow = (target.path / ".github/workflows/devkit.yml").read_text()
    assert workflow == (templates_dir() / "ci/github-actions.yml").read_text()
    pre_commit = (target.path / ".pre-commit-config.yaml").read_text()
    # devkit's hooks install from the package index (no repository URL devkit would have to guess)
    assert "  - repo: local\n" in pre_commit and "https://" not in pre_commit
    assert pre_commit.count(f'additional_dependencies: ["monorepo-devkit=={__version__}"]') == 4
    # what it wrote is usable: pre-commit accepts the config, devkit and towncrier read the tables
    r = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=target.path, env=target.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    target.git("checkout", "-q", "-b", "feat/BA-1-x")
    target.commit(
        "feat(BA-1): x", {"changes/5.feature.md": "Add the X\n", "changes/6.fix.md": "Fix Y\n"}
    )
    p = devkit(target, "check", "news", "--base", "main")
    assert p.returncode == 0, p.stdout + p.stderr
    r = subprocess.run(
        [sys.executable, "-m", "towncrier", "build", "--draft", "--version", "1.1", "--date", "2026-01-02"],
        cwd=target.path, env=target.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "## 1.1 (2026-01-02)\n\n"
        "### Features\n\n* Add the X ([#5](https://github.com/acme/widget/pull/5))\n\n"
        "### Fixes\n\n* Fix Y ([#6](https://github.com/acme/widget/pull/6))\n\n"
    )


def test_second_run_changes_nothing(target: Repo) -> None:
    assert devkit(target, "init").returncode == 0
    p = devkit(target, "init")
    assert p.returncode == 0
    assert p.stdout.splitlines()[-2:] == ["nothing to do", f"next: {NEXT_STEP}"]
    assert all(line.startswith("  unchanged") for line in p.stdout.splitlines()[1:6])


def test_dry_run_prints_the_diffs_and_writes_nothing(target: Repo) -> None:
    p = devkit(target, "init", "--dry-run")
    assert p.returncode == 0
    assert target.git("status", "--porcelain") == ""
    assert "--- a/pyproject.toml\n+++ b/pyproject.toml\n" in p.stdout
    assert '+[tool.devkit]\n+preset = "conventional"\n' in p.stdout
    assert "--- /dev/null\n+++ b/.github/workflows/devkit.yml\n" in p.stdout
    assert p.stdout.endswith("dry run: nothing was written\n")


def test_keeps_what_it_did_not_write_without_a_terminal(target: Repo) -> None:
    """Issue 18: no terminal, no --force: a file devkit did not write is kept byte for byte, the
    plan says so and why, and the rest is written (it used to refuse everything, exit 2)."""
    target.write(".pre-commit-config.yaml", "repos: []\n")
    p = devkit(target, "init")
    assert p.returncode == 0, p.stderr
    assert (
        "  keep       .pre-commit-config.yaml  (exists and was not written by devkit: the "
        "project's own; --force replaces it)"
    ) in p.stdout.splitlines()
    assert "--- a/.pre-commit-config.yaml" not in p.stdout  # no diff of what stays
    assert (target.path / ".pre-commit-config.yaml").read_text() == "repos: []\n"
    assert (target.path / "changes/README.md").is_file()
    assert "wrote .pre-commit-config.yaml" not in p.stdout
    assert p.stdout.splitlines()[-1] == f"next: {NEXT_STEP}"
    p = devkit(target, "init", "--force")
    assert p.returncode == 0
    assert (
        "--- a/.pre-commit-config.yaml\n+++ b/.pre-commit-config.yaml\n@@ -1 +1,39 @@\n-repos: []\n"
        in p.stdout
    )
    assert "id: devkit-commit-msg" in (target.path / ".pre-commit-config.yaml").read_text()


def test_a_file_devkit_wrote_is_kept_too_when_edited(target: Repo) -> None:
    assert devkit(target, "init").returncode == 0
    readme = target.path / "changes/README.md"
    readme.write_text(readme.read_text() + "Our own note.\n")
    p = devkit(target, "init", "--keep")
    assert p.returncode == 0
    assert (
        "  keep       changes/README.md  (written by `devkit init`, an older version or edited "
        "since: --force updates it)"
    ) in p.stdout.splitlines()
    assert readme.read_text().endswith("Our own note.\n")


def test_changing_the_preset_is_an_overwrite(target: Repo) -> None:
    assert devkit(target, "init").returncode == 0
    p = devkit(target, "init", "--preset", "backend.ai")
    assert p.returncode == 2
    assert (
        "  overwrite  pyproject.toml  (changes tool.devkit.preset from 'conventional' to 'backend.ai')"
        in p.stdout
    )
    assert p.stderr.splitlines()[1] == (
        "    hint: Re-run with --force to change it, or without --preset to keep it."
    )
    assert devkit(target, "init", "--preset", "backend.ai", "--force").returncode == 0
    data = tomllib.loads((target.path / "pyproject.toml").read_text())
    assert data["tool"]["devkit"]["preset"] == "backend.ai"
    # an existing towncrier config is the project's: kept as it is
    assert [t["directory"] for t in data["tool"]["towncrier"]["type"]][:3] == [
        "breaking",
        "feature",
        "fix",
    ]


def test_existing_towncrier_config_is_kept_and_its_directory_used(target: Repo) -> None:
    extra = '\n[tool.towncrier]\ndirectory = "news"\n\n[[tool.towncrier.type]]\ndirectory = "bugfix"\nname = "Bugs"\n'
    target.write("pyproject.toml", PYPROJECT + extra)
    p = devkit(target, "init")
    assert p.returncode == 0, p.stderr
    assert (target.path / "news/README.md").is_file()
    assert not (target.path / "changes").exists()
    assert (
        "`news/<PR number>.<type>.md`, for example `news/1234.bugfix.md`."
        in (target.path / "news/README.md").read_text()
    )
    assert (
        target.path / "pyproject.toml"
    ).read_text() == PYPROJECT + extra + '\n[tool.devkit]\npreset = "conventional"\n'


def test_without_a_pyproject_and_without_git(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    r = Repo(d, Repo.init(tmp_path / "unused", tmp_path / "home").env)
    p = devkit(r, "init", str(d), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    data = tomllib.loads((d / "pyproject.toml").read_text())
    assert data["tool"]["devkit"] == {"preset": "conventional"}
    assert data["tool"]["towncrier"]["issue_format"] == "(#{issue})"


def test_bad_input_is_one_line(target: Repo, tmp_path: Path) -> None:
    target.write("pyproject.toml", "[project\n")
    p = devkit(target, "init")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.startswith("devkit: error: pyproject.toml is not valid TOML:")
    target.write("pyproject.toml", "[tool]\ndevkit = 3\n")
    p = devkit(target, "init")
    assert (p.returncode, p.stderr.splitlines()[0]) == (
        2,
        "devkit: error: pyproject.toml: `tool` and `tool.devkit` must be tables",
    )
    target.write("pyproject.toml", PYPROJECT + "\n[tool.devkit.init]\ndevkit_rpo = 'x'\n")
    p = devkit(target, "init")
    assert p.returncode == 2 and "tool.devkit.init.devkit_rpo: unknown key" in p.stderr
    p = devkit(target, "init", str(tmp_path / "nowhere"))
    assert (p.returncode, p.stderr) == (
        2,
        f"devkit: error: no such directory: {tmp_path / 'nowhere'}\n",
    )


def test_devkit_repo_is_configurable(target: Repo) -> None:
    target.write(
        "pyproject.toml",
        PYPROJECT + "\n[tool.devkit.init]\ndevkit_repo = 'https://example.com/fork/devkit'\n",
    )
    assert devkit(target, "init").returncode == 0
    assert (
        "  - repo: https://example.com/fork/devkit\n"
        in (target.path / ".pre-commit-config.yaml").read_text()
    )


def _on_terminal(repo: Repo, answers: str, *args: str) -> tuple[int, str]:
    """Run devkit init with a pseudo-terminal as stdin and stdout; type the answers."""
    main, child = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "devkit", "init", *args],
        cwd=repo.path, env=repo.env, stdin=child, stdout=child, stderr=child,
    )  # fmt: skip
    os.close(child)
    os.write(main, answers.encode())
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return p.wait(timeout=60), out.decode().replace("\r\n", "\n")


def test_on_a_terminal_it_asks_before_writing_and_before_overwriting(target: Repo) -> None:
    target.write(".pre-commit-config.yaml", "repos: []\n")
    rc, out = _on_terminal(target, "y\nn\n")  # write the files: yes; overwrite the config: no
    assert rc == 0, out
    assert "Write 5 file(s)? [Y/n]" in out and "Overwrite .pre-commit-config.yaml? [y/N]" in out
    assert "kept .pre-commit-config.yaml (not overwritten)" in out
    assert (target.path / ".pre-commit-config.yaml").read_text() == "repos: []\n"
    assert (target.path / "changes/README.md").is_file()
    rc, out = _on_terminal(target, "y\n", "--yes")  # --yes skips the first question only
    assert rc == 0 and "Write" not in out and "Overwrite .pre-commit-config.yaml? [y/N]" in out
    assert "id: devkit-news" in (target.path / ".pre-commit-config.yaml").read_text()
