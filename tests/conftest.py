from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A repository on `main` with a conventional pyproject, a towncrier config and one commit."""
    r = Repo.init(tmp_path / "repo", tmp_path / "home")
    r.commit(
        "chore: initial commit",
        {
            "pyproject.toml": PYPROJECT_CONVENTIONAL,
            "changes/README.md": "fragments\n",
            "src/app.py": "print('hi')\n",
        },
    )
    return r
