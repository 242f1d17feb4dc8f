"""The project's ruff, not devkit's (issue 13): the pin is found, installed once from PyPI into a cache,
and named in the report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devkit import ruff
from tests.gitrepo import Repo
from tests.prrepo import devkit, upstream

# kept between runs (as the e2e suite keeps its wheels): the first run downloads ruff 0.14.0 once
CACHE = Path.home() / ".cache" / "devkit-tests" / "cache"
PRE_COMMIT = """\
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v5.0.0
    hooks: [{id: check-yaml}]
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: v0.13.3  # the project's gate
    hooks: [{id: ruff-check}]
"""


def test_the_pin_is_found_where_projects_keep_it(tmp_path: Path) -> None:
    assert ruff.find_pin(tmp_path) is None
    (tmp_path / "pants.toml").write_text(
        '[GLOBAL]\npants_version = "2.32.0"\n\n[ruff]\nversion = "0.14.0"\n'
    )
    assert ruff.find_pin(tmp_path) == ("0.14.0", "[ruff] version in pants.toml")
    (tmp_path / ".pre-commit-config.yaml").write_text(PRE_COMMIT)
    assert ruff.find_pin(tmp_path) == (
        "0.13.3",
        "the ruff-pre-commit rev in .pre-commit-config.yaml",
    )
    assert ruff.find_pin(tmp_path, "0.12.0") == ("0.12.0", "[tool.devkit.lint] ruff")
    (tmp_path / "pants.toml").write_text("[ruff\n")  # unreadable: no pin from it, no traceback
    (tmp_path / ".pre-commit-config.yaml").unlink()
    assert ruff.find_pin(tmp_path) is None


def test_backendai_pins_ruff_in_pants_toml(tmp_path: Path) -> None:
    from tests.backendai import checkout

    bai = checkout(tmp_path / "bai", "pants.toml")
    assert ruff.find_pin(bai) == ("0.14.0", "[ruff] version in pants.toml")


@pytest.fixture
def pinned(tmp_path: Path) -> Repo:
    up = upstream(tmp_path)
    up.commit(
        "chore: pin ruff", {"pants.toml": '[ruff]\nversion = "0.14.0"\n', "src/x.py": "import os\n"}
    )
    return up


def test_the_pinned_ruff_runs_and_the_report_says_so(pinned: Repo) -> None:
    env = {"DEVKIT_CACHE_DIR": str(CACHE)}
    p = devkit(pinned, "lint", "--all", "--format", "json", env=env)
    (check,) = json.loads(p.stdout)["checks"]
    assert check["notes"][0] == "ruff 0.14.0 (pinned by [ruff] version in pants.toml)", p.stderr
    assert [v["code"] for v in check["violations"]] == ["F401"]
    binary = CACHE / "ruff" / "0.14.0" / "bin" / "ruff"
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ruff 0.14.0"
    # installed once: a second run finds it in the cache (no pip, so no temp dir left behind)
    before = binary.stat().st_mtime_ns
    p = devkit(pinned, "lint", "--all", env=env)
    assert "lint: note: ruff 0.14.0 (pinned by [ruff] version in pants.toml)" in p.stdout
    assert binary.stat().st_mtime_ns == before
    assert not [x for x in (CACHE / "ruff").iterdir() if x.name.startswith(".")]


def test_a_version_pypi_does_not_have_is_one_line(pinned: Repo, tmp_path: Path) -> None:
    pinned.write(
        "pyproject.toml",
        (pinned.path / "pyproject.toml").read_text() + '\n[tool.devkit.lint]\nruff = "9.9.9"\n',
    )
    p = devkit(pinned, "lint", "--all", env={"DEVKIT_CACHE_DIR": str(tmp_path / "cache")})
    assert p.returncode == 1
    (line,) = [x for x in p.stdout.splitlines() if x.startswith("lint: error:")]
    assert line.startswith("lint: error: could not install ruff 9.9.9 from PyPI: ERROR:")
    assert not (tmp_path / "cache" / "ruff" / "9.9.9").exists()
    pinned.write(
        "pyproject.toml",
        (pinned.path / "pyproject.toml").read_text().replace('"9.9.9"', '"latest"'),
    )
    p = devkit(pinned, "lint", "--all")
    assert (
        p.returncode == 2
        and 'tool.devkit.lint.ruff: expected a ruff version such as "0.14.0"' in p.stderr
    )
