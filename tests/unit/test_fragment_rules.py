from __future__ import annotations

import pytest

from devkit.config import build
from devkit.conventions.fragment_rules import (
    Entry,
    FragmentConfig,
    FragmentName,
    Numbering,
    PullFacts,
    check_added,
    check_entry,
    parse_name,
)

TYPES = ("breaking", "feature", "enhance", "deprecation", "fix", "doc", "deps", "misc", "test")
FC = FragmentConfig("changes", TYPES, "md", ("template.md",))
CONV = build({}, "", "").news
BAI = build({"preset": "backend.ai"}, "", "").news


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("123.fix.md", FragmentName("123", "fix", 0)),
        ("0042.fix.md", FragmentName("42", "fix", 0)),
        ("123.fix.2.md", FragmentName("123", "fix", 2)),
        ("fix.md", FragmentName("", "fix", 0, placeholder=True)),
        (".fix.md", FragmentName("", "fix", 0, placeholder=True)),
        ("+abc.fix.md", FragmentName("", "fix", 0)),
    ],
)
def test_parse_valid_names(name: str, expected: FragmentName) -> None:
    assert parse_name(name, FC) == expected


@pytest.mark.parametrize(
    ("name", "code", "hint"),
    [
        ("123.bugfix.md", "NF002", "Did you mean `123.fix.md`?"),
        ("123.feat.md", "NF002", "Did you mean `123.feature.md`?"),
        ("fix-123.md", "NF001", "Rename it to `123.fix.md`."),
        ("fix.123.md", "NF001", "Rename it to `123.fix.md`."),
        ("123.fix", "NF001", "Rename it to `123.fix.md`."),
        ("123.md", "NF001", "Name it `<number>.<type>.md`, e.g. `123.fix.md`."),
        ("746.reproducible.fix.md", "NF001", "Rename it to `746.fix.md`."),
    ],
)
def test_parse_invalid_names(name: str, code: str, hint: str) -> None:
    got = parse_name(name, FC)
    assert not isinstance(got, FragmentName) and got[0] == code and got[2] == hint


def entry_codes(name: str, data: bytes | None, settings=CONV, kind: str = "file") -> list[str]:
    return [v.code for v in check_entry(Entry(name, kind, data), FC, settings)]


@pytest.mark.parametrize(
    ("data", "settings", "expected"),
    [
        (b"Fix the login form\n", CONV, []),
        (b"", CONV, ["NF004"]),
        (b"  \n\t\n", CONV, ["NF004"]),
        (b"Add your info here\n", CONV, ["NF005"]),
        (b"Fix the login form", CONV, ["NF007"]),
        (b"Fix \xff\n", CONV, ["NF009"]),
        (b"\xef\xbb\xbfFix the login form\n", CONV, []),
        (b"Fix it.\nIt broke on Safari.\n", CONV, []),
        (b"Fix it.\nIt broke on Safari.\n", BAI, ["NF006"]),
        (b"Fix it. It broke on Safari.\n", BAI, ["NF006"]),
        (
            b"The v2 `id` is the uuid; the name lives at `basic_info.name`. `DomainV2` exposes it.\n",
            BAI,
            [],
        ),
        (b"Fix e.g. Safari and i.e. Chrome, v1.2. too\n", BAI, []),
    ],
)
def test_content_rules(data: bytes, settings, expected: list[str]) -> None:
    assert entry_codes("123.fix.md", data, settings) == expected


def test_placeholder_is_a_warning_unless_disallowed() -> None:
    (v,) = check_entry(Entry("fix.md", "file", b"Fix it\n"), FC, CONV)
    assert (v.code, v.severity) == ("NF003", "warning")
    strict = build({"news": {"allow_placeholders": False}}, "", "").news
    (v,) = check_entry(Entry("fix.md", "file", b"Fix it\n"), FC, strict)
    assert (v.code, v.severity) == ("NF003", "error")


def test_symlinks_and_directories() -> None:
    assert entry_codes("123.fix.md", None, kind="symlink") == ["NF010"]
    assert entry_codes("sub", None, kind="dir") == ["NF010"]


def test_branch_must_add_and_number_must_match() -> None:
    assert [v.code for v in check_added([], FC, CONV, None)] == ["NF011"]
    assert [v.code for v in check_added(["README.md"], FC, CONV, None)] == ["NF011"]
    assert [v.code for v in check_added(["12.fix.md"], FC, CONV, 12)] == []
    got = check_added(["12.fix.md", "fix.md", "13.doc.md"], FC, CONV, 13)
    assert [(v.code, v.location.file, v.hint) for v in got] == [
        ("NF008", "changes/12.fix.md", "Rename it: `git mv changes/12.fix.md changes/13.fix.md`."),
        (
            "NF008",
            "changes/fix.md",
            "Rename it: `git mv changes/fix.md changes/13.fix.md` (or `devkit news assign 13`).",
        ),
    ]
    no_require = build({"news": {"require": False}}, "", "").news
    assert check_added([], FC, no_require, None) == []


BACKENDAI = build({"preset": "backend.ai"}, "", "")
TIMELINE = Numbering("timeline-check.yml", renumbers=("main",))


def test_a_workflow_that_numbers_placeholders_makes_them_warnings_except_for_forks() -> None:
    """Issue 18: Backend.AI's timeline-check.yml numbers placeholders (and renumbers an issue's
    number) on main; in a fork's pull request nothing does, and the rename is the contributor's."""
    added = ["fix.md", "42.doc.md"]
    same = check_added(added, FC, BACKENDAI.news, 7, TIMELINE, PullFacts("main"))
    assert [(v.code, v.severity) for v in same] == [("NF008", "warning")]  # 42.doc.md, renamed
    on_release = check_added(added, FC, BACKENDAI.news, 7, TIMELINE, PullFacts("23.09"))
    assert [(v.code, v.severity, v.location.file) for v in on_release] == [
        ("NF008", "error", "changes/42.doc.md")
    ]
    fork = check_added(added, FC, BACKENDAI.news, 7, TIMELINE, PullFacts("main", fork=True))
    assert [(v.severity, v.hint) for v in fork] == [
        (
            "error",
            "Rename it: `git mv changes/fix.md changes/7.fix.md` (or `devkit news assign 7`).",
        ),
        ("error", "Rename it: `git mv changes/42.doc.md changes/7.doc.md`."),
    ]


def test_a_backport_keeps_the_numbers_of_what_it_backports() -> None:
    facts = PullFacts("23.09", originals=("1234",))
    assert check_added(["1234.fix.md"], FC, BACKENDAI.news, 1300, None, facts) == []
    (v,) = check_added(["1235.fix.md"], FC, BACKENDAI.news, 1300, None, facts)
    assert (v.code, v.severity) == ("NF008", "error")


@pytest.mark.parametrize(
    ("base", "branch", "title", "expected"),
    [
        ("23.09", "backport/1234-to-23.09", "fix: x (#1234)", ("1234",)),
        ("23.09", "backport/1234-to-23.09", "fix: x", ("1234",)),
        ("26.4", "fix/by-hand", "fix(BA-1): x (#77)", ("77",)),
        ("main", "backport/1234-to-23.09", "fix: x (#1234)", ()),  # not to a release branch
        ("23.09", "fix/x", "fix: x", ()),
    ],
)
def test_what_a_backport_backports(base: str, branch: str, title: str, expected: tuple) -> None:
    from devkit.checks.pull import backported

    assert backported(BACKENDAI, base, branch, title) == expected
    assert backported(build({}, "", ""), base, branch, title) == ()  # the conventional preset
