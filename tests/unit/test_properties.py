"""No input makes the parsers or the rules raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.config import build
from devkit.conventions.branch_rules import check_branch, suggest
from devkit.conventions.commit_rules import check_message
from devkit.conventions.fragment_rules import (
    Entry,
    FragmentConfig,
    check_added,
    check_entry,
    parse_name,
)
from devkit.conventions.message import DecodeFailure, auto_comment, cleanup, git_cleanup, parse

PRESETS = [
    build({}, "", ""),
    build({"preset": "backend.ai"}, "", ""),
    build(
        {
            "commit": {
                "header_max_length": 50,
                "subject_case": "lower",
                "subject_full_stop": False,
                "body_max_line_length": 40,
                "required_trailers": ["Signed-off-by"],
                "forbidden_trailers": ["Change-Id"],
                "scope_required": True,
                "allow_merge_commits": False,
                "allow_fixup_commits": False,
            }
        },
        "",
        "",
    ),
]
FC = FragmentConfig("changes", ("feature", "fix", "doc"), "md", ("template.md",))

# text that looks like commit messages often enough to reach deep branches
pieces = st.sampled_from(
    [
        "feat",
        "fix",
        "(",
        ")",
        "!",
        ":",
        " ",
        "\n",
        "\n\n",
        "BREAKING CHANGE",
        "BREAKING-CHANGE",
        "Refs",
        " #",
        "#",
        "Merge branch 'x'",
        'Revert "',
        "fixup! ",
        "scope",
        "BA-12",
        ", ",
        "\r\n",
        "\t",
        "é",
        "x" * 80,
        "https://x.y/",
        "Signed-off-by: a",
        ";",
        ">8",
        ".",
    ]
)
messages = st.one_of(st.text(), st.lists(pieces, max_size=30).map("".join))


@settings(max_examples=400, deadline=None)
@given(messages, st.sampled_from([None, "#", ";", "auto"]), st.sampled_from([None, 1, 2]))
def test_commit_rules_never_raise(text: str, comment: str | None, parents: int | None) -> None:
    if comment == "auto":
        comment = auto_comment(text.encode("utf-8", "surrogatepass")).decode()
    lines, numbers = cleanup(text, comment)
    parse(lines)
    for s in PRESETS:
        for v in check_message(lines, s.commit, numbers=numbers, parents=parents):
            assert v.code.startswith("CM") and v.message


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_decode_never_raises_anything_but_decode_failure(data: bytes) -> None:
    try:
        git_cleanup(data, None).text()
    except DecodeFailure:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_branch_rules_never_raise(name: str) -> None:
    for s in PRESETS:
        check_branch(name, s.branch)
        suggest(name, s.branch)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40),
    st.binary(max_size=200),
    st.sampled_from(["file", "symlink", "dir", "other"]),
)
def test_fragment_rules_never_raise(name: str, data: bytes, kind: str) -> None:
    parse_name(name, FC)
    for s in PRESETS:
        check_entry(Entry(name, kind, data), FC, s.news)
        check_added([name], FC, s.news, 12)
