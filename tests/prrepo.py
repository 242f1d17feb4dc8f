"""Pull-request shaped repositories for the ci / lint / init / workflow tests (real git, no mocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devkit import ruff
from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

# every lint report names the ruff that ran (issue 13); these repositories pin none
RUFF_NOTE = f"ruff {ruff.version_of(ruff.bundled())} (devkit's own; the project pins none)"

RUFF = """
[tool.ruff]
line-length = 100
extend-exclude = ["generated"]
"""


def devkit(
    repo: Repo,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return repo.devkit(*args, cwd=cwd, env=env, input=input)


def run_bash(
    work: Repo, script: Path, text: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """A workflow's `run:` steps as one bash script in work, with this interpreter's devkit on PATH."""
    script.write_text(text)
    full = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{work.env['PATH']}"}
    return subprocess.run(
        ["bash", str(script)], cwd=work.path, env=full, capture_output=True, text=True, check=False
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
