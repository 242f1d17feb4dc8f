"""The backend.ai preset against Backend.AI's own repository (issue 13): errors exactly where the
project's CI fails, warnings (with the recommendation) where its documents only recommend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devkit.checks.branch import branch_report
from devkit.checks.commit import text_report
from devkit.checks.title import title_report
from devkit.config import build
from devkit.conventions.branch_rules import check_branch
from tests.backendai import checkout
from tests.gitrepo import Repo, clean_env

BAI = build({"preset": "backend.ai"}, "", "")


@pytest.fixture(scope="module")
def bai(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bai") / "backend.ai"
    return checkout(root, "changes", ".github", "pyproject.toml", "pants.toml")


def verdict(report) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    return (
        [v.code for v in report.violations if v.severity == "error"],
        [v.code for v in report.violations if v.severity == "warning"],
    )


# subjects quoted in issue 13 and reference/backendai.md §2.4: main's squash commits, all accepted by
# its CI except `hotfix:` (pr-prefix.yml's regex)
SUBJECTS = [
    ("chore(deps,BA-6226): bump the pinned aiohttp (#6227)", [], ["CM005"]),
    ("refactor(BA- 3850): split the scheduler loop (#3851)", [], ["CM005"]),
    ("feat(BA-4184):Enable the model store by default (#4185)", [], ["CM002"]),
    ("feat(BA-1234): add the thing (#5678)", [], []),
    ("fix(BA-4592, BA-4593): two keys (#4600)", [], []),
    ("fix(BA-6205,BA-6206): no space (#6207)", [], []),
    ("docs(BEP): reserve BEP-1051 for the new scheduler", [], []),
    ("release: 26.4.4rc7", [], []),
    ("chore: Update gitignore", [], []),
    ("fix(install-dev): component scope (#1)", [], []),
    ("repo: move the issue templates (#2)", [], []),
    ("setup: pin the Python build deps (#3)", [], []),
    ("hotfix: add missing rebellions common device definition", ["CM003"], []),
    ("perf: faster scheduling (#4)", ["CM003"], []),
    ("feat!: drop the v1 API (#5)", ["CM008"], []),
    ("Feat: x (#6)", ["CM004"], []),
    ("Update the README", ["CM002"], []),
]


@pytest.mark.parametrize(("subject", "errors", "warnings"), SUBJECTS)
def test_main_branch_subjects(subject: str, errors: list[str], warnings: list[str]) -> None:
    """Main's commits are the pull requests' titles (squash merges): checked as titles."""
    assert verdict(title_report(subject, None, BAI)) == (errors, warnings)
    # a commit on a branch only warns (issue 18: the hook and `devkit ci` agree)
    assert verdict(text_report(subject, BAI)) == ([], errors + warnings)


def test_warnings_say_what_the_recommendation_is() -> None:
    (v,) = text_report("refactor(BA- 3850): split the loop (#1)", BAI).violations
    assert v.hint == "Did you mean `BA-3850`?"
    (v,) = text_report("feat(BA-4184):Enable it (#2)", BAI).violations
    assert v.hint == "Write `feat(BA-4184): Enable it (#2)`."
    assert text_report(v.hint.split("`")[1], BAI).violations == ()


def test_pr_prefix_workflow_is_what_the_preset_errs_on(bai: Path) -> None:
    """pr-prefix.yml's own regex decides: every prefix it accepts passes the title check."""
    workflow = (bai / ".github/workflows/pr-prefix.yml").read_text()
    accepted = re.search(r"grep -qE '\^\((?P<alt>[^)]+)\)\$'", workflow)["alt"]
    prefixes = [
        p
        for alt in accepted.split("|")
        for p in ([alt[:-1], alt[:-2]] if alt.endswith("?") else [alt])
    ]
    assert "docs" in prefixes and "doc" in prefixes and "deps" in prefixes
    for prefix in prefixes:
        assert verdict(title_report(f"{prefix}(BA-1): do it", 12, BAI))[0] == [], prefix
    for prefix in ("hotfix", "perf", "style", "feature"):
        assert not re.fullmatch(accepted, prefix)
        assert verdict(title_report(f"{prefix}: do it", 12, BAI))[0] == ["CM003"], prefix


# branch heads quoted in issue 13 and reference/backendai.md §2.3 (CONTRIBUTING.md: recommended, "not
# strictly enforced"): none is an error
BRANCHES = [
    ("fix/BA-7249-document-flag-args-constraint", []),
    ("feat/BA-7158-user-domain-id-api", []),
    ("refactor/BA-7321/docker-conventional-compose", []),
    ("fix/BA-6635", []),
    ("feature/add-pr-guidelines", []),
    ("fix/session-memory-leak", []),
    ("maintenance/drop-old-configs", []),
    ("topic/scheduler-notes", []),
    ("doc/fix-typo", []),
    ("main", []),
    ("26.4", []),
    ("1.2", []),
    ("release/26.4.1", []),
    ("backport/13594-to-26.4", []),
    ("gh-readonly-queue/main/pr-13594-0bb4e02", []),
    ("dependabot/pip/aiohttp-3.13.5", []),
    ("claude/fix-session-leak", []),
    ("copilot/add-tests", []),
    ("BA-1347-add-zeromq-devel", ["BR001"]),
    ("04-11-feat_ba-5675_expose_auto_activate_on_rest_post__deployments__id__revisions", ["BR001"]),
    ("bep/1051-scheduler", ["BR002"]),
    ("wip", ["BR001"]),
]


@pytest.mark.parametrize(("name", "warnings"), BRANCHES)
def test_branch_heads(name: str, warnings: list[str]) -> None:
    report = branch_report(name, BAI)
    assert verdict(report) == ([], warnings)
    for v in report.violations:  # a rename it suggests passes the rule itself
        m = re.search(r"git branch -m (\S+?)`", v.hint)
        if m:
            assert check_branch(m.group(1), BAI.branch) == [], v.hint


def test_contributing_prefixes_are_branch_types(bai: Path) -> None:
    # "Branch Naming Convention (Recommended)" and the GitFlow paragraph: `feature/`, `hotfix/`, ...
    listed = re.findall(r"`([a-z]+)/`", (bai / ".github/CONTRIBUTING.md").read_text())
    assert {"feature", "fix", "docs", "refactor", "hotfix", "maintenance"} <= set(listed)
    for prefix in set(listed):
        assert verdict(branch_report(f"{prefix}/some-work", BAI)) == ([], []), prefix


def test_every_current_fragment_has_no_error(bai: Path, tmp_path: Path) -> None:
    """168 fragments: 0 errors; the three with more than one sentence get the recommendation."""
    repo = Repo(bai, clean_env(tmp_path / "home"))
    pyproject = bai / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original + '\n[tool.devkit]\npreset = "backend.ai"\n')
    try:
        p = repo.devkit("check", "news", "--format", "json")
    finally:
        pyproject.write_text(original)
    assert p.returncode == 0, p.stdout + p.stderr
    (check,) = json.loads(p.stdout)["checks"]
    assert check["checked"] == len(list((bai / "changes").glob("*.*.md"))) == 168
    found = sorted((v["location"]["file"], v["code"], v["severity"]) for v in check["violations"])
    assert found == [
        ("changes/13348.fix.md", "NF006", "warning"),
        ("changes/13348.misc.md", "NF006", "warning"),
        ("changes/13747.breaking.md", "NF006", "warning"),
    ]
    # and without the preset (a Backend.AI clone with no [tool.devkit]): the conventional defaults
    p = repo.devkit("check", "news")
    assert p.returncode == 0, p.stdout


def test_scopes_from_the_monorepo_folders(bai: Path, repo: Repo) -> None:
    """`scope_dirs = ["src/ai/backend/*"]` makes Backend.AI's packages the scopes, plus ticket keys."""
    listing = repo.git("-C", str(bai), "ls-tree", "-d", "--name-only", "main", "src/ai/backend/")
    packages = [Path(p).name for p in listing.split()]
    assert {"manager", "agent", "storage", "web", "common"} <= set(packages)
    for name in packages:
        (repo.path / "src/ai/backend" / name).mkdir(parents=True)
    repo.write(
        "pyproject.toml",
        (repo.path / "pyproject.toml").read_text()
        + '\n[tool.devkit.commit]\nscope_dirs = ["src/ai/backend/*"]\nscope_patterns = ["BA-\\\\d+"]\n',
    )
    for ok in ("fix(manager): x", "fix(BA-12): x", "feat(agent, BA-7): x", "fix: no scope"):
        p = repo.devkit("check", "commit", "-m", ok)
        assert p.returncode == 0, p.stdout
    p = repo.devkit("check", "commit", "-m", "fix(manger): x")
    assert p.returncode == 1
    assert (
        "scope `manger` is not allowed; allowed: the folders `accelerator`, `account_manager`"
        in p.stdout
    )
    assert "the pattern `BA-\\d+`" in p.stdout
    assert "hint: Did you mean `manager`?" in p.stdout


def test_without_the_preset_a_rename_hint_is_never_the_name_itself(repo: Repo) -> None:
    """Issue 13: a Backend.AI clone with no [tool.devkit] (the conventional defaults) once got BR001
    with "Rename it, e.g. `git branch -m fix/BA-9999-session-timeout`", the very name it rejected."""
    repo.write("pyproject.toml", "[project]\nname = 'backend.ai'\n")
    p = repo.devkit("check", "branch", "fix/BA-9999-session-timeout")
    assert p.returncode == 1
    new = re.search(r"git branch -m (\S+?)`", p.stdout).group(1)
    assert new == "fix/ba-9999-session-timeout"
    assert repo.devkit("check", "branch", new).returncode == 0


def test_check_title_on_its_own(repo: Repo) -> None:
    repo.write(
        "pyproject.toml",
        (repo.path / "pyproject.toml").read_text().replace('"conventional"', '"backend.ai"'),
    )
    p = repo.devkit("check", "title", "feat(BA-4184):Enable the model store", "--pr", "13594")
    assert p.returncode == 0
    assert p.stdout.splitlines() == [
        "title:1:15: warning CM002 [header-format] pull request title 'feat(BA-4184):Enable the model "
        "store': expected a space after `:`",
        "    hint: Write `feat(BA-4184): Enable the model store`.",
        "devkit: 0 error(s), 1 warning(s) (1 title checked)",
    ]
    p = repo.devkit("check", "title", "hotfix: add the device", "--format", "json")
    assert (
        p.returncode == 1 and json.loads(p.stdout)["checks"][0]["violations"][0]["code"] == "CM003"
    )
