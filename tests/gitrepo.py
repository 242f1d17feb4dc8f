"""Real git repositories in temp dirs, independent of the user's global git config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev Eloper",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev Eloper",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def clean_env(home: Path) -> dict[str, str]:
    """The process env with git's hook variables dropped, HOME isolated and authors pinned."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") and not k.startswith("GITHUB_")
    }
    env.update(GIT_ENV)
    env["HOME"] = str(home)
    env["GIT_CONFIG_GLOBAL"] = str(home / ".gitconfig")
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    return env


class Repo:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env

    @classmethod
    def init(cls, path: Path, home: Path, branch: str = "main") -> Repo:
        path.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        env = clean_env(home)
        repo = cls(path, env)
        repo.git("init", "-q", "-b", branch)
        repo.git("config", "commit.gpgsign", "false")
        return repo

    def git(self, *args: str, check: bool = True) -> str:
        p = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True, check=False
        )
        if check and p.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p.stdout

    def write(self, rel: str, text: str | bytes) -> Path:
        f = self.path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            f.write_bytes(text)
        else:
            f.write_text(text, encoding="utf-8")
        return f

    def commit(
        self, message: str, files: dict[str, str | bytes] | None = None, allow_empty: bool = False
    ) -> str:
        for rel, text in (files or {}).items():
            self.write(rel, text)
        self.git("add", "-A")
        args = ["commit", "-q", "--cleanup=verbatim", "-m", message]
        if allow_empty or not files:
            args.append("--allow-empty")
        self.git(*args)
        return self.git("rev-parse", "HEAD").strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def devkit(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `devkit` CLI (this interpreter's) inside the repository."""
        full_env = dict(self.env)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "devkit", *args],
            cwd=cwd or self.path,
            env=full_env,
            capture_output=True,
            text=True,
            input=input,
            check=False,
        )


PYPROJECT_CONVENTIONAL = """\
[project]
name = "demo"
version = "1.2.0"

[tool.devkit]
preset = "conventional"

[tool.towncrier]
directory = "changes"
filename = "CHANGELOG.md"
title_format = "## {version} ({project_date})"
issue_format = "#{issue}"

[[tool.towncrier.type]]
directory = "feature"
name = "Features"
showcontent = true

[[tool.towncrier.type]]
directory = "fix"
name = "Fixes"
showcontent = true

[[tool.towncrier.type]]
directory = "doc"
name = "Documentation"
showcontent = true
"""

PYPROJECT_BACKENDAI = PYPROJECT_CONVENTIONAL.replace(
    'preset = "conventional"', 'preset = "backend.ai"'
)
