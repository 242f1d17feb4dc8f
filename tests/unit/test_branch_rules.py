from __future__ import annotations

import pytest

from devkit.config import build
from devkit.conventions.branch_rules import check_branch, is_exempt, suggest

CONV = build({}, "", "").branch
BAI = build({"preset": "backend.ai"}, "", "").branch


@pytest.mark.parametrize(
    ("name", "settings", "expected"),
    [
        ("feat/login-form", CONV, []),
        ("fix/issue-12.part2", CONV, []),
        ("Login_Form", CONV, ["BR001"]),
        ("feet/login-form", CONV, ["BR002"]),
        ("feat/Login_Form", CONV, ["BR001"]),
        ("feat/", CONV, ["BR001"]),
        ("fix/BA-7249-document-flag-args-constraint", BAI, []),
        ("refactor/BA-7321/docker-conventional-compose", BAI, []),
        ("fix/BA-6635", BAI, []),
        ("feature/add-pr-guidelines", BAI, []),
        ("BA-1347-add-zeromq-devel", BAI, ["BR001"]),
        ("perf/faster", BAI, []),
        ("wip", BAI, ["BR001"]),
    ],
)
def test_check_branch(name: str, settings, expected: list[str]) -> None:
    assert [v.code for v in check_branch(name, settings)] == expected


@pytest.mark.parametrize(
    ("name", "settings", "exempt"),
    [
        ("main", CONV, True),
        ("master", CONV, True),
        ("dependabot/pip/x-1.2", CONV, True),
        ("feat/x", CONV, False),
        ("26.4", BAI, True),
        ("release/26.4.1", BAI, True),
        ("backport/123-to-26.4", BAI, True),
        ("develop", BAI, False),
    ],
)
def test_exempt(name: str, settings, exempt: bool) -> None:
    assert is_exempt(name, settings) is exempt


@pytest.mark.parametrize(
    ("name", "settings", "expected"),
    [
        ("Login_Form", CONV, "feat/login-form"),
        ("Feature_Login", CONV, "feature/login"),
        ("feet/login", CONV, "feat/login"),
        ("BA-1347-add-zeromq", BAI, "feat/BA-1347-add-zeromq"),
        ("fix/Session_Leak", BAI, "fix/session-leak"),
    ],
)
def test_suggested_rename_matches_a_pattern(name: str, settings, expected: str) -> None:
    assert suggest(name, settings) == expected
    assert check_branch(expected, settings) == []


def test_message_shows_forms_and_rename() -> None:
    (v,) = check_branch("BA-1347-add-zeromq", BAI)
    assert (
        v.message
        == "branch `BA-1347-add-zeromq` does not match `<type>/BA-<n>[-<slug>]` or `<type>/<slug>`"
    )
    assert v.hint == "Rename it, e.g. `git branch -m feat/BA-1347-add-zeromq`."
