"""Issue 13's smaller gaps: placeholders in `news preview`, configurable trigger-label skips."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gitrepo import PYPROJECT_BACKENDAI, Repo
from tests.prrepo import devkit, upstream


def test_preview_lists_placeholders_with_a_note(repo: Repo) -> None:
    repo.write("changes/12.fix.md", "Fix the thing\n")
    repo.write("changes/feature.md", "Add a  search box\n")
    p = repo.devkit("news", "preview")
    assert p.returncode == 0, p.stderr
    draft, _, note = p.stdout.partition("Not numbered yet")
    assert "Fix the thing" in draft and "search box" not in draft  # towncrier drops it
    assert note.splitlines()[2:] == ["- Features: Add a search box (changes/feature.md)"]
    (repo.path / "changes/feature.md").unlink()
    assert "Not numbered yet" not in repo.devkit("news", "preview").stdout


def test_trigger_labels_skip_the_fragment_check(tmp_path: Path) -> None:
    up = upstream(tmp_path, pyproject=PYPROJECT_BACKENDAI)
    up.git("checkout", "-q", "-b", "feat/BA-1-x")
    up.commit("feat(BA-1): x", {"src/x.py": "X = 1\n"})  # no fragment: NF011
    args = ("ci", "--base", "main", "--pr", "5", "--skip", "lint", "--format", "json")

    def news(action: str, label: str, extra: str = "") -> dict:
        if extra:
            up.write("pyproject.toml", PYPROJECT_BACKENDAI + extra)
        ev = tmp_path / "event.json"
        pr = {"number": 5, "title": "feat(BA-1): x", "labels": [{"name": label}]}
        ev.write_text(json.dumps({"action": action, "label": {"name": label}, "pull_request": pr}))
        p = devkit(up, *args, env={"GITHUB_EVENT_PATH": str(ev)})
        return next(c for c in json.loads(p.stdout)["checks"] if c["check"] == "news")

    # Backend.AI's timeline-check.yml: adding or removing a flow:* label does not re-run the check
    assert news("labeled", "flow:merge-queue")["notes"] == [
        "skipped: this run was started by the `flow:merge-queue` label"
    ]
    assert news("unlabeled", "flow:hotfix")["violations"] == []
    # a label that is merely present, or another label's event, does not skip it
    assert [v["code"] for v in news("opened", "flow:hotfix")["violations"]] == ["NF011"]
    assert [v["code"] for v in news("labeled", "area:docs")["violations"]] == ["NF011"]
    # configurable, globs included
    extra = '\n[tool.devkit.news]\nskip_trigger_labels = ["area:*"]\nskip_labels = ["no-*"]\n'
    assert news("labeled", "area:docs", extra)["violations"] == []
    assert [v["code"] for v in news("labeled", "flow:hotfix", extra)["violations"]] == ["NF011"]
    assert news("opened", "no-changelog", extra)["notes"][0].startswith(
        "skipped: the pull request has"
    )
