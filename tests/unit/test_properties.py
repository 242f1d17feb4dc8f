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


# issue 22: git's clean-up forms, as bytes (what a hook's file holds before anything is decoded)
byte_pieces = st.sampled_from(
    [
        b"feat: x", b"\n", b"\n\n", b"\r\n", b"\r", b"#", b";", b"//", b" ", b"\t", b"\x0b", b"\x0c",
        b"\0", b"\xe9", b"\xff\xfe", b"\xef\xbb\xbf", "\u3000".encode(), "\u00a0".encode(),
        b"# ------------------------ >8 ------------------------\n",
        b"; ------------------------ >8 ------------------------\n",
        b"BREAKING CHANGE:", b"BREAKING CHANGE #1", b"Refs: 1", b"body",
    ]
)  # fmt: skip
raw_messages = st.one_of(st.binary(max_size=200), st.lists(byte_pieces, max_size=30).map(b"".join))


@settings(max_examples=400, deadline=None)
@given(raw_messages, st.sampled_from([None, b"#", b";", b"//"]))
def test_git_cleanup_keeps_whole_lines_of_the_original(data: bytes, comment: bytes | None) -> None:
    cleaned = git_cleanup(data, comment)
    for line, number, start in zip(cleaned.lines, cleaned.numbers, cleaned.starts, strict=True):
        end = data.find(b"\n", start)
        original = data[start : len(data) if end < 0 else end]
        assert data.count(b"\n", 0, start) == number - 1
        assert original.rstrip(b" \t\r") == line and line[-1:] not in (b" ", b"\t", b"\r")
        assert comment is None or not original.startswith(comment)
    assert all(a or b for a, b in zip(cleaned.lines, cleaned.lines[1:], strict=False))
    assert not cleaned.lines or (cleaned.lines[0] and cleaned.lines[-1])
    try:
        lines, _ = cleaned.text()
    except DecodeFailure as exc:
        assert exc.line in cleaned.numbers and 0 <= exc.offset < len(data)
        assert data[exc.offset : exc.offset + 1] == b"\0" if exc.nul else True
    else:
        assert len(lines) == len(cleaned.lines)


@settings(max_examples=300, deadline=None)
@given(raw_messages)
def test_auto_comment_is_one_of_gits_candidates(data: bytes) -> None:
    assert auto_comment(data).decode() in "#;@!$%^&|:"


digit_like = st.sampled_from(["1", "12", "007", "\u00b2", "\u0661", "\u00bd", "\uff11", "+", "fix",
                              "feature", "doc", ".", "md", "x"])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(digit_like, min_size=1, max_size=6).flatmap(
        lambda parts: st.sampled_from([".".join(parts), "".join(parts)])
    ),
    st.binary(max_size=40),
)
def test_fragment_names_with_digit_like_characters(name: str, data: bytes) -> None:
    parsed = parse_name(name, FC)
    number = getattr(parsed, "number", "")
    assert number == "" or (number.isascii() and number.isdigit())
    for s in PRESETS:
        check_entry(Entry(name, "file", data), FC, s.news)
        check_added([name], FC, s.news, 12)


def _the_long_way(data: bytes, comment: bytes | None):  # type: ignore[no-untyped-def]
    """git_cleanup without its shortcut for a message git keeps line for line."""
    from devkit.conventions import message

    saved = message.clean_already
    message.clean_already = lambda _data: None
    try:
        return git_cleanup(data, comment)
    finally:
        message.clean_already = saved


@settings(max_examples=400, deadline=None)
@given(raw_messages)
def test_the_clean_up_shortcut_changes_nothing(data: bytes) -> None:
    """The range check's shortcut (issue 18: a message git already cleaned is taken line for line)
    gives the clean-up and the verdict the long way gives."""
    from devkit.checks.commit import _checked, committed
    from devkit.violations import Location

    assert git_cleanup(data, None) == _the_long_way(data, None)
    for cfg in PRESETS:
        whole = _checked(_the_long_way(data, None), cfg, Location(commit="c" * 40), 1, "a@b")
        assert committed(data, cfg, "c" * 40, 1, "a@b") == whole


breaking_pieces = st.sampled_from(
    ["breaking", "BREAKING", "Breaking", " ", "_", "-", "change", "CHANGE", "s", "S", "\u017f",
     ":", "  ", "\t", "\u00a0", "\u3000", "x", "#", "\u00e9", "\x1c", "\r"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(breaking_pieces, max_size=8).map("".join))
def test_breaking_like_by_hand_is_the_pattern(line: str) -> None:
    """The range check reads a `BREAKING CHANGE`-like token by hand (no `re` import): it is what
    the pattern matches, Unicode case and whitespace included."""
    import re

    from devkit.conventions.commit_rules import _BREAKING_LIKE, _breaking_like

    m = re.match(_BREAKING_LIKE, line, re.I) if line[:8].lower() == "breaking" else None
    assert _breaking_like(line) == ((m["tok"], m["sep"], m["rest"]) if m else None)
