"""The news-assign workflow (issue 13): its `run:` commands as a script against a pull request with a
placeholder fragment, pushing to a real `origin`; and `devkit ci` accepting the placeholder meanwhile."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from devkit.checks.news import ASSIGN_WORKFLOW
from devkit.resources import templates_dir
from tests.gitrepo import Repo
from tests.prrepo import clone, devkit, run_bash, upstream

TEMPLATE = templates_dir() / "ci" / "news-assign.yml"


def job() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())["jobs"]["assign"]


def script() -> str:
    runs = [s["run"] for s in job()["steps"] if "run" in s and s.get("name") != "Install devkit"]
    assert runs and not any("${{" in r for r in runs), "expressions need a runner to expand"
    return "set -euo pipefail\n" + "\n".join(runs) + "\n"


def test_template_never_loops_and_skips_forks_and_drafts() -> None:
    doc = yaml.safe_load(TEMPLATE.read_text())
    assert doc["permissions"] == {"contents": "write"}
    condition = job()["if"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    assert "!github.event.pull_request.draft" in condition
    assert "github.actor != 'github-actions[bot]'" in condition
    checkout = next(
        s for s in job()["steps"] if str(s.get("uses", "")).startswith("actions/checkout@")
    )
    assert checkout["with"] == {"ref": "${{ github.head_ref }}", "fetch-depth": 0}
    assert "token" not in checkout["with"]  # GITHUB_TOKEN: its push starts no workflow run


def run_script(work: Repo, tmp_path: Path, pr: int) -> subprocess.CompletedProcess[str]:
    # a runner sets no GIT_AUTHOR_* / GIT_COMMITTER_*: the script's `git config user.*` decides
    env = {
        **{k: v for k, v in work.env.items() if not k.startswith(("GIT_AUTHOR", "GIT_COMMITTER"))},
        "PR_NUMBER": str(pr),
        "BASE_REF": "main",
        "GITHUB_HEAD_REF": "feat/search",
    }
    return run_bash(work, tmp_path / "assign.sh", script(), env)


def test_workflow_numbers_the_placeholder_and_pushes_once(tmp_path: Path) -> None:
    up = upstream(tmp_path)
    up.git("config", "receive.denyCurrentBranch", "ignore")
    up.git("checkout", "-q", "-b", "feat/search")
    up.commit(
        "feat: add search", {"src/search.py": "X = 1\n", "changes/feature.md": "Add search\n"}
    )
    up.git("checkout", "-q", "main")
    work = clone(up, tmp_path / "work")  # actions/checkout: ref head_ref, fetch-depth 0
    work.git("checkout", "-q", "feat/search")

    # before the workflow has run: with the workflow in the repository, ci accepts the placeholder
    work.write(ASSIGN_WORKFLOW, TEMPLATE.read_text())
    p = devkit(
        work, "ci", "--base", "origin/main", "--pr", "42", "--format", "json", "--skip", "lint"
    )
    news = next(c for c in json.loads(p.stdout)["checks"] if c["check"] == "news")
    assert p.returncode == 0, p.stdout
    assert [(v["code"], v["severity"]) for v in news["violations"]] == [("NF003", "warning")]
    assert "workflow gives it the pull request's number" in news["violations"][0]["hint"]
    (work.path / ASSIGN_WORKFLOW).unlink()
    p = devkit(work, "ci", "--base", "origin/main", "--pr", "42", "--skip", "lint")
    assert (
        p.returncode == 1 and "NF008" in p.stdout
    )  # without it, the number is the contributor's job

    p = run_script(work, tmp_path, 42)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "changes/feature.md -> changes/42.feature.md" in p.stdout
    pushed = up.git("log", "-1", "--format=%an%n%s%n%b", "feat/search").strip().splitlines()
    assert pushed == [
        "github-actions[bot]",
        "docs: number the news fragments for #42",
        "changes/feature.md -> changes/42.feature.md",
    ]
    files = up.git("ls-tree", "--name-only", "feat/search", "changes/").split()
    assert "changes/42.feature.md" in files and "changes/feature.md" not in files
    assert devkit(work, "check", "news", "--base", "origin/main", "--pr", "42").returncode == 0
    # a second run (the next push) finds nothing to do and pushes nothing
    head = up.git("rev-parse", "feat/search")
    p = run_script(work, tmp_path, 42)
    assert p.returncode == 0 and "no placeholder fragments to rename" in p.stdout
    assert up.git("rev-parse", "feat/search") == head


def test_assign_only_touches_what_the_branch_adds(tmp_path: Path) -> None:
    up = upstream(tmp_path)
    up.commit("docs: an old placeholder on main", {"changes/fix.md": "Old fix\n"})
    up.git("checkout", "-q", "-b", "feat/x")
    up.commit("feat: x", {"changes/doc.md": "Document x\n"})
    p = devkit(up, "news", "assign", "9", "--base", "main", "--dry-run")
    assert p.returncode == 0 and p.stdout == "changes/doc.md -> changes/9.doc.md\n"
    p = devkit(up, "news", "assign", "9", "--base", "nope")
    assert p.returncode == 2 and "base ref `nope` does not exist" in p.stderr


def test_init_writes_the_workflow_on_request(tmp_path: Path) -> None:
    up = upstream(tmp_path)
    p = devkit(up, "init", "--yes", "--force", "--assign-workflow")
    assert p.returncode == 0, p.stderr
    assert f"wrote {ASSIGN_WORKFLOW}" in p.stdout
    assert (up.path / ASSIGN_WORKFLOW).read_text() == TEMPLATE.read_text()
