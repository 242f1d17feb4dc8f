"""The workflow template: its `run:` commands, run as a shell script against a pull-request repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from devkit.resources import templates_dir
from tests.gitrepo import Repo
from tests.prrepo import RUFF_NOTE, clone, event, gh_env, run_bash, upstream

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = templates_dir() / "ci" / "github-actions.yml"


def steps() -> list[dict]:
    return yaml.safe_load(TEMPLATE.read_text())["jobs"]["devkit"]["steps"]


def script() -> str:
    """Every `run:` after devkit is installed (this test uses the devkit under test instead)."""
    runs = [s["run"] for s in steps() if "run" in s and s.get("name") != "Install devkit"]
    assert runs and not any("${{" in r for r in runs), "expressions need a runner to expand"
    return "set -euo pipefail\n" + "\n".join(runs) + "\n"


def test_this_repository_uses_the_template() -> None:
    assert (ROOT / ".github/workflows/devkit.yml").read_text() == TEMPLATE.read_text()


def test_template_checks_out_the_branch_with_history_and_installs_devkit() -> None:
    doc = yaml.safe_load(TEMPLATE.read_text())
    assert set(doc[True]["pull_request"]["types"]) >= {
        "opened",
        "edited",
        "synchronize",
        "labeled",
    }  # `on:`
    checkout = next(s for s in steps() if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"] == {
        "ref": "${{ github.event.pull_request.head.sha }}",
        "fetch-depth": 0,
    }
    install = next(s for s in steps() if s.get("name") == "Install devkit")
    assert install["run"] == 'python -m pip install --quiet "$DEVKIT_SPEC"'
    assert "devkit>=0.1,<0.2" in install["env"]["DEVKIT_SPEC"]
    assert script().endswith("devkit ci --format github --deepen\n")


def run_workflow(
    work: Repo, tmp_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return run_bash(work, tmp_path / "workflow.sh", script(), {**work.env, **env})


def pr(tmp_path: Path, good: bool) -> tuple[Repo, str]:
    up = upstream(tmp_path)
    up.git("checkout", "-q", "-b", "feat/search")
    files = {
        "src/search.py": "X = 1\n" if good else "import os\n",
        "changes/7.feature.md": "Add search\n",
    }
    up.commit("feat: add search" if good else "feet: add search", files)
    head = up.head()
    up.git("checkout", "-q", "main")
    return up, head


def test_workflow_passes_a_clean_pull_request(tmp_path: Path) -> None:
    up, head = pr(tmp_path, good=True)
    work = clone(up, tmp_path / "work")  # fetch-depth: 0
    work.git("checkout", "-q", "--detach", head)
    ev = event(tmp_path, 7, "feat: add search", head={"ref": "feat/search", "sha": head})
    p = run_workflow(work, tmp_path, gh_env(tmp_path, ev))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "::notice title=devkit commit::1 commit(s) in `origin/main..HEAD`",
        "::notice title=devkit news::1 fragment(s) added since `origin/main`",
        f"::notice title=devkit lint::{RUFF_NOTE}",
        "devkit: all good (1 branch name, 1 title, 1 commit message, 2 fragments, 1 file checked)",
    ]
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## devkit\n") and "| lint | ✅ pass | 1 | 0 | 0 |" in summary


def test_workflow_fails_a_bad_pull_request_from_a_shallow_checkout(tmp_path: Path) -> None:
    up, head = pr(tmp_path, good=False)
    work = clone(up, tmp_path / "work", "--depth", "1", "--branch", "feat/search")  # fetch-depth: 1
    work.git("checkout", "-q", "--detach")
    ev = event(tmp_path, 7, "feet: add search", head={"ref": "feat/search", "sha": head})
    p = run_workflow(work, tmp_path, gh_env(tmp_path, ev))
    assert p.returncode == 1, p.stdout + p.stderr
    out = p.stdout.splitlines()
    assert [line.split("::")[1] for line in out if line.startswith("::error")] == [
        "error title=devkit CM003 type-enum",
        "error title=devkit CM003 type-enum",
        "error file=src/search.py,line=1,col=8,title=devkit F401 unused-import",
    ]
    assert "::notice title=devkit commit::fetched `origin/main` (50 commits deep)" in out
    assert (
        out[-1]
        == "devkit: 3 error(s), 0 warning(s) (1 branch name, 1 title, 1 commit message, 2 fragments, 1 file checked)"
    )
    summary = (tmp_path / "summary.md").read_text()
    assert (
        "| commit | ❌ fail | 1 | 1 | 0 |" in summary
        and "| title | ❌ fail | 1 | 1 | 0 |" in summary
    )
