"""The workflow templates: GitHub's schema and zizmor's audits (offline), the rules every job keeps,
and the devkit check's `run:` commands, run as a shell script against a pull-request repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devkit.resources import templates_dir
from tests.gitrepo import Repo
from tests.prrepo import RUFF_NOTE, clone, event, gh_env, run_bash, upstream

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = templates_dir() / "ci" / "github-actions.yml"
TEMPLATES = sorted((templates_dir() / "ci").glob("*.yml"))
OWN = ROOT / ".github/workflows/devkit.yml"
BIN = Path(sys.executable).parent


def steps(path: Path = TEMPLATE) -> list[dict]:
    return yaml.safe_load(path.read_text())["jobs"]["check"]["steps"]


def script() -> str:
    """Every `run:` after devkit is installed (this test uses the devkit under test instead)."""
    runs = [s["run"] for s in steps() if "run" in s and s.get("name") != "Install devkit"]
    assert runs and not any("${{" in r for r in runs), "expressions need a runner to expand"
    return "set -euo pipefail\n" + "\n".join(runs) + "\n"


def test_this_repository_uses_the_template_but_installs_itself() -> None:
    """devkit's own CI differs from the template in one step: the template holds nothing of devkit's."""
    own, template = yaml.safe_load(OWN.read_text()), yaml.safe_load(TEMPLATE.read_text())
    own_install = next(s for s in steps(OWN) if s.get("name") == "Install devkit")
    assert own_install == {"name": "Install devkit", "run": "python -m pip install --quiet ."}
    for doc in (own, template):
        doc["jobs"]["check"]["steps"] = [
            s for s in doc["jobs"]["check"]["steps"] if s.get("name") != "Install devkit"
        ]
    assert own == template
    for path in TEMPLATES:
        assert "github.event.repository" not in path.read_text(), path.name


def test_template_checks_out_the_branch_and_installs_devkit() -> None:
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
        "fetch-depth": 1,
    }
    install = next(s for s in steps() if s.get("name") == "Install devkit")
    assert install["run"] == 'python -m pip install --quiet "$DEVKIT_SPEC"'
    assert "devkit>=0.1,<0.2" in install["env"]["DEVKIT_SPEC"]
    assert script().endswith("devkit ci --format github --deepen\n")


def tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return str(path)


@pytest.mark.parametrize("path", [*TEMPLATES, OWN], ids=lambda p: p.name)
def test_github_accepts_the_workflow(path: Path) -> None:
    """GitHub's workflow schema, as check-jsonschema vendors it (no download)."""
    cmd = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_zizmor_finds_nothing() -> None:
    """zizmor's offline audits (template injection, permissions, credentials, triggers, pins, ...);
    .github/zizmor.yml lets GitHub's own actions be pinned by major version."""
    cmd = [tool("zizmor"), "--offline", "--config", str(ROOT / ".github/zizmor.yml")]
    p = subprocess.run(
        [*cmd, *map(str, TEMPLATES), str(OWN)], capture_output=True, text=True, check=False
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "No findings to report" in p.stdout + p.stderr


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_job_is_bounded_and_asks_only_for_what_it_needs(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["permissions"] == {}  # nothing by default
    for name, job in doc["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), name
        assert isinstance(job.get("permissions"), dict), name
        uses = [s["uses"] for s in job["steps"] if "uses" in s]
        assert uses == ["actions/checkout@v6", "actions/setup-python@v6"], name
        assert job["steps"][0]["with"]["fetch-depth"] == 1, name  # `--deepen` fetches the rest
        runs = [s["run"] for s in job["steps"] if "devkit " in s.get("run", "")]
        assert runs and all("--deepen" in r for r in runs), name


def test_only_labels_that_can_change_the_verdict_rerun_the_check() -> None:
    doc = yaml.safe_load(TEMPLATE.read_text())
    assert set(doc[True]["pull_request"]["types"]) >= {"labeled", "unlabeled"}  # `on:`
    job = doc["jobs"]["check"]
    skip = "startsWith(github.event.label.name, vars.DEVKIT_LABEL_PREFIX || 'skip')"
    assert skip in job["if"] and skip in doc["concurrency"]["group"] and skip in job["name"]
    # a skipped job counts as a passed required check: the run that skips is never named `devkit`
    assert job["name"].endswith("&& 'devkit (label ignored)' || 'devkit' }}")
    assert "github.run_id" in doc["concurrency"]["group"]  # an ignored label cancels nothing


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
    work = clone(up, tmp_path / "work", "--depth", "1", "--branch", "feat/search")  # fetch-depth: 1
    work.git("checkout", "-q", "--detach", head)
    ev = event(tmp_path, 7, "feat: add search", head={"ref": "feat/search", "sha": head})
    p = run_workflow(work, tmp_path, gh_env(tmp_path, ev))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "::notice title=devkit commit::fetched `origin/main` (50 commits deep)",
        "::notice title=devkit commit::deepened the clone by 50 commits",
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
