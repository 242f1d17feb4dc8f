"""devkit ci end to end: real repositories shaped like pull requests, real ruff and towncrier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitrepo import PYPROJECT_BACKENDAI, Repo
from tests.prrepo import RUFF_NOTE, clone, devkit, event, gh_env, upstream

TYPES = (
    "`build`, `chore`, `ci`, `docs`, `feat`, `fix`, `perf`, `refactor`, `revert`, `style`, `test`"
)
CM003 = f"type `feet` is not allowed; allowed: {TYPES}"


def no_traceback(p) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in p.stdout + p.stderr


@pytest.fixture
def pr(tmp_path: Path) -> Repo:
    """feat/search off main: good and bad commits, a merge from main, a revert, a fixup, fragment 7,
    and two Python files with a lint error and a format error."""
    up = upstream(tmp_path, extra="\n[tool.devkit.commit]\nallow_fixup_commits = false\n")
    up.git("checkout", "-q", "-b", "feat/search")
    up.commit(
        "feat: add search",
        {"src/search.py": "def search():\n    return 1\n", "changes/7.feature.md": "Add search\n"},
    )
    up.commit("feet: add the index", {"src/index.py": "INDEX = {}\n"})
    up.git("checkout", "-q", "main")
    up.commit("docs: explain the app", {"docs/app.md": "app\n", "src/main_only.py": "import sys\n"})
    up.git("checkout", "-q", "feat/search")
    up.git("merge", "-q", "--no-ff", "main", "-m", "Merge branch 'main' into feat/search")
    up.commit("feat: tweak search", {"src/search.py": "def search():\n    return 2\n"})
    up.git("revert", "--no-edit", "HEAD")
    up.commit("fixup! feat: add search", {"src/index.py": "INDEX: dict = {}\n"})
    up.commit("fix: add helpers", {"src/bad.py": "import os\n", "src/ugly.py": "x=1\n"})
    return up


def sha(repo: Repo, message: str) -> str:
    return (
        repo.git("log", "--format=%H", f"--grep=^{message}", "-F", "-n1").strip()
        or repo.git("log", "--format=%H", "--fixed-strings", f"--grep={message}", "-n1").strip()
    )


def test_text_output_lists_every_violation_and_exits_1(pr: Repo) -> None:
    p = devkit(pr, "ci", "--base", "main", "--pr", "7")
    no_traceback(p)
    bad, fixup = sha(pr, "feet: add the index"), sha(pr, "fixup! feat: add search")
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        f"commit {bad[:10]} 'feet: add the index'",
        f"commit {bad[:10]}:1:1: error CM003 [type-enum] {CM003}",
        "    hint: Did you mean `feat`?",
        f"commit {fixup[:10]} 'fixup! feat: add search'",
        f"commit {fixup[:10]}:1: error CM022 [fixup-commit] `fixup!` commits must be squashed before merging",
        "    hint: Run `git rebase -i --autosquash <base>`.",
        "commit: note: 7 commit(s) in `main..HEAD`",
        "news: note: 1 fragment(s) added since `main`",
        "src/bad.py:1:8: error F401 [unused-import] `os` imported but unused",
        "    hint: Run `devkit lint --fix`.",
        "src/ugly.py:1:2: error FMT [unformatted] `src/ugly.py` would be reformatted by `ruff format`",
        "    hint: Run `devkit lint --fix` (or `ruff format src/ugly.py`).",
        f"lint: note: {RUFF_NOTE}",
        "devkit: 4 error(s), 0 warning(s) "
        "(1 branch name, 7 commit messages, 2 fragments, 4 files checked)",
    ]


def test_json_output_has_every_check_and_violation(pr: Repo) -> None:
    p = devkit(pr, "ci", "--base", "main", "--pr", "7", "--format", "json")
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert (data["version"], data["ok"], data["errors"], data["warnings"]) == (1, False, 4, 0)
    checks = {c["check"]: c for c in data["checks"]}
    assert list(checks) == ["branch", "commit", "news", "lint"]
    assert [(c["ok"], c["checked"], c["error"]) for c in checks.values()] == [
        (True, 1, None),
        (False, 7, None),
        (True, 2, None),
        (False, 4, None),
    ]
    commit = [
        (v["code"], v["location"]["commit"], v["context"]) for v in checks["commit"]["violations"]
    ]
    assert commit == [
        ("CM003", sha(pr, "feet: add the index"), "feet: add the index"),
        ("CM022", sha(pr, "fixup! feat: add search"), "fixup! feat: add search"),
    ]
    assert checks["lint"]["violations"] == [
        {
            "code": "F401",
            "name": "unused-import",
            "severity": "error",
            "message": "`os` imported but unused",
            "hint": "Run `devkit lint --fix`.",
            "context": None,
            "location": {"file": "src/bad.py", "line": 1, "col": 8, "commit": None},
        },
        {
            "code": "FMT",
            "name": "unformatted",
            "severity": "error",
            "message": "`src/ugly.py` would be reformatted by `ruff format`",
            "hint": "Run `devkit lint --fix` (or `ruff format src/ugly.py`).",
            "context": None,
            "location": {"file": "src/ugly.py", "line": 1, "col": 2, "commit": None},
        },
    ]


def test_github_format_annotations_and_step_summary(pr: Repo, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    p = devkit(
        pr,
        "ci",
        "--base",
        "main",
        "--pr",
        "7",
        "--title",
        "feet: search",
        "--format",
        "github",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert p.returncode == 1
    bad, fixup = sha(pr, "feet: add the index"), sha(pr, "fixup! feat: add search")
    assert p.stdout.splitlines() == [
        f"::error title=devkit CM003 type-enum::pull request title 'feet: search': {CM003} — Did you mean `feat`?",
        f"::error title=devkit CM003 type-enum::commit {bad[:10]} (feet: add the index): {CM003} — Did you mean `feat`?",
        f"::error title=devkit CM022 fixup-commit::commit {fixup[:10]} (fixup! feat: add search): "
        "`fixup!` commits must be squashed before merging — Run `git rebase -i --autosquash <base>`.",
        "::notice title=devkit commit::7 commit(s) in `main..HEAD`",
        "::notice title=devkit news::1 fragment(s) added since `main`",
        "::error file=src/bad.py,line=1,col=8,title=devkit F401 unused-import::`os` imported but unused "
        "— Run `devkit lint --fix`.",
        "::error file=src/ugly.py,line=1,col=2,title=devkit FMT unformatted::`src/ugly.py` would be "
        "reformatted by `ruff format` — Run `devkit lint --fix` (or `ruff format src/ugly.py`).",
        f"::notice title=devkit lint::{RUFF_NOTE}",
        "devkit: 5 error(s), 0 warning(s) "
        "(1 branch name, 1 title, 7 commit messages, 2 fragments, 4 files checked)",
    ]
    text = summary.read_text()
    assert text.startswith("earlier step\n## devkit\n")
    assert "| branch | ✅ pass | 1 | 0 | 0 |" in text
    assert "| title | ❌ fail | 1 | 1 | 0 |" in text
    assert "| commit | ❌ fail | 7 | 2 | 0 |" in text
    assert "| news | ✅ pass | 2 | 0 | 0 |" in text
    assert "| lint | ❌ fail | 4 | 2 | 0 |" in text
    assert (
        "| src/bad.py:1:8 | `F401` unused-import | `os` imported but unused | Run `devkit lint --fix`. |"
        in text
    )
    assert f"| commit {bad[:10]}:1:1 | `CM003` type-enum |" in text


def test_clean_pull_request_exits_0(tmp_path: Path) -> None:
    up = upstream(tmp_path)
    up.git("checkout", "-q", "-b", "feat/search")
    up.commit(
        "feat: add search",
        {"src/search.py": "def search():\n    return 1\n", "changes/7.feature.md": "Add search\n"},
    )
    p = devkit(up, "ci", "--base", "main", "--pr", "7", "--title", "feat: add search")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "commit: note: 1 commit(s) in `main..HEAD`",
        "news: note: 1 fragment(s) added since `main`",
        f"lint: note: {RUFF_NOTE}",
        "devkit: all good (1 branch name, 1 title, 1 commit message, 2 fragments, 1 file checked)",
    ]


@pytest.mark.parametrize(
    ("fragments", "expected"),
    [
        ({"changes/8.feature.md": "Add search\n"}, ["NF008"]),  # misnumbered
        ({}, ["NF011"]),  # missing
        ({"changes/1.feature.md": "Add the app, better\n"}, ["NF011"]),  # only modifies an old one
        (
            {"changes/7.feature.md": "Add search\nand more\n\n"},
            [],
        ),  # added (multi-line is fine here)
        ({"changes/7.bugfix.md": "Fix search\n"}, ["NF002", "NF011"]),  # a type towncrier lacks
    ],
)
def test_fragments_added_modified_missing_misnumbered(
    tmp_path: Path, fragments: dict[str, str], expected: list[str]
) -> None:
    up = upstream(tmp_path)
    up.git("checkout", "-q", "-b", "feat/search")
    up.commit("feat: add search", {"src/search.py": "X = 1\n", **fragments})
    p = devkit(up, "ci", "--base", "main", "--pr", "7", "--format", "json")
    news = next(c for c in json.loads(p.stdout)["checks"] if c["check"] == "news")
    assert [v["code"] for v in news["violations"]] == expected
    assert p.returncode == (1 if expected else 0)


def test_skip_label_and_release_title_skip_the_fragment_check(tmp_path: Path) -> None:
    up = upstream(tmp_path, pyproject=PYPROJECT_BACKENDAI)
    up.git("checkout", "-q", "-b", "feat/BA-1-search")
    up.commit("feat(BA-1): add search", {"src/search.py": "X = 1\n"})  # no fragment
    base = ("ci", "--base", "main", "--pr", "9", "--format", "json")

    def news(p) -> dict:  # type: ignore[no-untyped-def]
        return next(c for c in json.loads(p.stdout)["checks"] if c["check"] == "news")

    p = devkit(up, *base, "--title", "feat(BA-1): add search")
    assert p.returncode == 1 and [v["code"] for v in news(p)["violations"]] == ["NF011"]
    p = devkit(up, *base, "--title", "feat(BA-1): add search", "--label", "skip:changelog")
    assert p.returncode == 0, p.stdout
    assert news(p)["notes"] == ["skipped: the pull request has the `skip:changelog` label"]
    p = devkit(up, *base, "--title", "release: 26.4.4")
    assert p.returncode == 0, p.stdout
    assert news(p)["notes"] == ["skipped: the title starts with `release:`"]


def test_skip_labels_and_title_prefixes_are_configurable(tmp_path: Path) -> None:
    extra = '\n[tool.devkit.news]\nskip_labels = ["no-news"]\nskip_title_prefixes = ["chore"]\n'
    up = upstream(tmp_path, extra=extra)
    up.git("checkout", "-q", "-b", "chore/deps")
    up.commit("chore: bump deps", {"src/search.py": "X = 1\n"})
    args = ("ci", "--base", "main", "--pr", "9")
    assert devkit(up, *args, "--label", "skip:changelog").returncode == 1
    assert devkit(up, *args, "--label", "no-news").returncode == 0
    assert devkit(up, *args, "--title", "chore(deps): bump").returncode == 0


def test_backendai_title_is_checked_as_the_squash_commit(tmp_path: Path) -> None:
    up = upstream(tmp_path, pyproject=PYPROJECT_BACKENDAI)
    up.git("checkout", "-q", "-b", "feat/BA-12-search")
    up.commit("wip", {"src/search.py": "X = 1\n", "changes/7.feature.md": "Add search\n"})
    args = ("ci", "--base", "main", "--pr", "7", "--format", "json")
    # free-form commits only warn: the project squash-merges, the title is what lands on main
    p = devkit(up, *args, "--title", "feat(BA-12): add search")
    assert p.returncode == 0, p.stdout
    data = json.loads(p.stdout)
    assert (data["errors"], data["warnings"]) == (0, 1)
    commit = next(c for c in data["checks"] if c["check"] == "commit")
    assert [(v["code"], v["severity"]) for v in commit["violations"]] == [("CM002", "warning")]
    title = next(c for c in data["checks"] if c["check"] == "title")
    assert title["violations"] == []
    # pr-prefix.yml rejects `!` and types outside its list
    for bad, code in (("feat!: drop v1", "CM008"), ("perf: faster", "CM003"), ("feat: x", None)):
        p = devkit(up, *args, "--title", bad)
        title = next(c for c in json.loads(p.stdout)["checks"] if c["check"] == "title")
        assert [v["code"] for v in title["violations"]] == ([code] if code else []), bad
        assert p.returncode == (1 if code else 0)
        if code:
            assert title["violations"][0]["context"] == f"{bad} (#7)"


def test_each_check_runs_on_its_own(pr: Repo) -> None:
    """ruff missing and a broken towncrier config: two errors of their own, the rest still runs."""
    pr.write("towncrier.toml", "[tool.towncrier]\ndirectory = 3\n")
    p = devkit(
        pr, "ci", "--base", "main", "--format", "json", env={"DEVKIT_RUFF": "/nonexistent/ruff"}
    )
    no_traceback(p)
    assert p.returncode == 1
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["lint"]["error"].startswith("ruff could not be started: /nonexistent/ruff")
    assert checks["news"]["error"] and "towncrier.toml" in checks["news"]["error"]
    assert checks["branch"]["ok"] and checks["commit"]["checked"] == 7
    assert [v["code"] for v in checks["commit"]["violations"]] == ["CM003", "CM022"]
    p = devkit(pr, "ci", "--base", "main", env={"DEVKIT_RUFF": "/nonexistent/ruff"})
    assert "lint: error: ruff could not be started" in p.stdout
    assert "could not run: news, lint" in p.stdout.splitlines()[-1]


def test_shallow_clone_fails_clearly_or_deepens(pr: Repo, tmp_path: Path) -> None:
    work = clone(pr, tmp_path / "shallow", "--depth", "1", "--branch", "feat/search")
    assert work.git("rev-parse", "--is-shallow-repository").strip() == "true"
    p = devkit(work, "ci", "--base", "origin/main", "--pr", "7", "--no-deepen", "--format", "json")
    no_traceback(p)
    assert p.returncode == 1
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    message = (
        "cannot read the pull request's changes: base ref `origin/main` does not exist here "
        "(this is a shallow clone); nothing was checked (run with `--deepen`, or check "
        "out with `fetch-depth: 0`)"
    )
    assert [checks[c]["error"] for c in ("commit", "news", "lint")] == [message] * 3
    assert checks["branch"]["ok"] and checks["branch"]["checked"] == 1
    # base present but too shallow for a merge base
    work.git("fetch", "-q", "--depth=1", "origin", "+refs/heads/main:refs/remotes/origin/main")
    p = devkit(work, "ci", "--base", "origin/main", "--pr", "7", "--no-deepen")
    assert p.returncode == 1
    assert (
        "commit: error: cannot read the pull request's changes: `origin/main` and `HEAD` have no merge "
        "base because the clone is shallow; nothing was checked (run with `--deepen`, or check out "
        "with `fetch-depth: 0`)"
    ) in p.stdout.splitlines()
    # --deepen fetches until the merge base is there, then checks exactly the same as a full clone
    p = devkit(work, "ci", "--base", "origin/main", "--pr", "7", "--deepen", "--format", "json")
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["commit"]["notes"][0] == "deepened the clone by 50 commits"
    assert checks["commit"]["checked"] == 7
    assert [v["code"] for c in checks.values() for v in c["violations"]] == [
        "CM003",
        "CM022",
        "F401",
        "FMT",
    ]


def test_shallow_clone_deepens_automatically_in_github_actions(pr: Repo, tmp_path: Path) -> None:
    work = clone(pr, tmp_path / "shallow", "--depth", "1", "--branch", "feat/search")
    work.git("checkout", "-q", "--detach")
    ev = event(tmp_path, 7, "feat: add search", head={"ref": "feat/search", "sha": work.head()})
    p = devkit(work, "ci", "--format", "json", env=gh_env(tmp_path, ev))
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["commit"]["notes"] == [
        "fetched `origin/main` (50 commits deep)",
        "deepened the clone by 50 commits",
        "7 commit(s) in `origin/main..HEAD`",
    ]
    assert checks["commit"]["checked"] == 7
    assert [v["code"] for c in checks.values() for v in c["violations"]] == [
        "CM003",
        "CM022",
        "F401",
        "FMT",
    ]


def test_github_event_supplies_pr_title_labels_and_branch(pr: Repo, tmp_path: Path) -> None:
    work = clone(pr, tmp_path / "work", "--branch", "feat/search")
    work.git("checkout", "-q", "--detach")  # actions/checkout leaves HEAD detached
    ev = event(
        tmp_path,
        8,
        "feet: search",
        labels=("area:docs",),
        head={"ref": "Feat_Search", "sha": work.head()},
    )
    env = gh_env(tmp_path, ev, head_ref="Feat_Search")
    p = devkit(work, "ci", "--format", "json", env=env)
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    assert [v["code"] for v in checks["branch"]["violations"]] == ["BR001"]
    assert [v["code"] for v in checks["title"]["violations"]] == ["CM003"]
    assert [v["code"] for v in checks["news"]["violations"]] == ["NF008"]  # 7.feature.md, PR 8
    assert checks["commit"]["notes"][-1] == "7 commit(s) in `origin/main..HEAD`"


def test_github_merge_checkout_checks_the_branch_commits(pr: Repo, tmp_path: Path) -> None:
    """By default actions/checkout builds a merge commit; ci reads the event's head sha instead."""
    work = clone(pr, tmp_path / "work")
    head = work.git("rev-parse", "origin/feat/search").strip()
    work.git("checkout", "-q", "--detach", "origin/main")
    work.git("merge", "-q", "--no-ff", head, "-m", f"Merge {head} into main")
    ev = event(tmp_path, 7, "feat: add search", head={"ref": "feat/search", "sha": head})
    p = devkit(work, "ci", "--format", "json", env=gh_env(tmp_path, ev))
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    # 7 commits of the branch, not GitHub's synthetic merge on top
    assert checks["commit"]["notes"][-1] == f"7 commit(s) in `origin/main..{head}`"
    assert checks["commit"]["checked"] == 7
    assert [v["code"] for c in checks.values() for v in c["violations"]] == [
        "CM003",
        "CM022",
        "F401",
        "FMT",
    ]


def test_bad_config_and_event_are_one_line_errors(pr: Repo, tmp_path: Path) -> None:
    pr.write(
        "pyproject.toml",
        (pr.path / "pyproject.toml").read_text() + "\n[tool.devkit.ci]\ndeepn = true\n",
    )
    p = devkit(pr, "ci", "--base", "main")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == [
        f"devkit: error: {pr.path / 'pyproject.toml'}: tool.devkit.ci.deepn: unknown key",
        "    hint: Did you mean `deepen`?",
    ]
    pr.git("checkout", "-q", "pyproject.toml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    p = devkit(pr, "ci", "--base", "main", env={"GITHUB_EVENT_PATH": str(bad)})
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1
    assert p.stderr.startswith(f"devkit: error: GITHUB_EVENT_PATH {bad} is not valid JSON")


def test_missing_base_branch_is_reported_not_passed(pr: Repo) -> None:
    p = devkit(pr, "ci", "--base", "origin/nope")
    assert p.returncode == 1
    assert (
        "commit: error: cannot read the pull request's changes: base ref `origin/nope` does not exist"
        in p.stdout
    )
    assert (
        p.stdout.splitlines()[-1]
        == "devkit: 0 error(s), 0 warning(s); could not run: commit, news, lint (1 branch name checked)"
    )


def test_checks_base_and_skip_from_config_and_options(tmp_path: Path) -> None:
    extra = '\n[tool.devkit.ci]\nbase = "main"\nchecks = ["commit", "lint"]\n'
    up = upstream(tmp_path, extra=extra)
    up.git("checkout", "-q", "-b", "Bad_Branch")
    up.commit("feet: x", {"src/x.py": "import os\n"})
    p = devkit(up, "ci", "--format", "json")
    assert [c["check"] for c in json.loads(p.stdout)["checks"]] == ["commit", "lint"]
    p = devkit(up, "ci", "--skip", "lint", "--format", "json")
    assert [c["check"] for c in json.loads(p.stdout)["checks"]] == ["commit"]
    assert p.returncode == 1
    up.write(
        "pyproject.toml", (up.path / "pyproject.toml").read_text().replace('"lint"]', '"lnt"]')
    )
    p = devkit(up, "ci")
    assert p.returncode == 2
    assert p.stderr.splitlines()[0].endswith("tool.devkit.ci.checks: unknown check 'lnt'")


def test_head_option_limits_the_range(pr: Repo) -> None:
    head = sha(pr, "feet: add the index")
    p = devkit(pr, "ci", "--base", "main", "--head", head, "--skip", "news", "--format", "json")
    checks = {c["check"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["commit"]["checked"] == 2
    assert checks["commit"]["notes"] == [f"2 commit(s) in `main..{head}`"]
    assert (
        checks["lint"]["checked"] == 2
    )  # src/search.py and src/index.py as of that commit's range


def test_outside_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    up = upstream(tmp_path)
    (tmp_path / "empty").mkdir()
    p = devkit(up, "ci", cwd=tmp_path / "empty")
    assert p.returncode == 2 and p.stderr.startswith("devkit: error: not inside a git repository")
