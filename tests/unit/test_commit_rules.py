"""Commit-message rules, table-driven over the two presets."""

from __future__ import annotations

import pytest

from devkit.config import build
from devkit.conventions.commit_rules import check_message
from devkit.conventions.message import (
    DecodeFailure,
    auto_comment,
    cleanup,
    git_cleanup,
    parse_footers,
    parse_header,
)

CONV = build({}, "", "").commit
BAI = build({"preset": "backend.ai"}, "", "").commit
ANY = build({"commit": {"types": []}}, "", "").commit


def codes(text: str, settings=CONV, parents=None, author="") -> list[str]:
    lines, numbers = cleanup(text, None)
    return [
        v.code
        for v in check_message(lines, settings, numbers=numbers, parents=parents, author=author)
    ]


# Conventional Commits 1.0.0, rule by rule (commit-conventions.md section 6)
SPEC_VALID = [
    "feat: allow provided config object to extend other configs",
    "feat!: send an email to the customer when a product is shipped",
    "feat(api)!: send an email to the customer when a product is shipped",
    "chore!: drop support for Node 6\n\nBREAKING CHANGE: use JavaScript features not available in Node 6.",
    "docs: correct spelling of CHANGELOG",
    "feat(lang): add Polish language",
    "fix: prevent racing of requests\n\nIntroduce a request id and a reference to latest request. Dismiss\n"
    "incoming responses other than from latest request.\n\nRemove timeouts which were used to mitigate the racing issue "
    "but are\nobsolete now.\n\nReviewed-by: Z\nRefs: #123",
    "FEAT: upper-case types are fine under the spec",
    "Fix(Parser): mixed case too",
    "feat: x\n\nBREAKING-CHANGE: the synonym is accepted",
    "feat: x\n\nBREAKING CHANGE: a multi-line\nfooter value continues here\nRefs #12",
    "fix: x\n\nCloses #12",
    "fix: x\n\nbody\n\nSigned-off-by: A <a@example.com>\nCo-authored-by: B <b@example.com>",
    "revert: let us never again speak of the noodle incident\n\nRefs: 676104e, a215868",
]


@pytest.mark.parametrize("message", SPEC_VALID)
def test_spec_examples_pass(message: str) -> None:
    assert codes(message) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("", ["CM001"]),
        ("Fixed the login bug", ["CM002"]),
        ("fix:x", ["CM002"]),
        ("fix:  x", ["CM002"]),
        ("fix: ", ["CM002"]),
        ("fix(parser x", ["CM002"]),
        ("fix(parser) x", ["CM002"]),
        ("(parser): x", ["CM002"]),
        ("fix(): x", ["CM007"]),
        ("feet: add search", ["CM003"]),
        ("feat: x\nno blank line", ["CM012"]),
        ("feat: x\n\nbody\nRefs: #123", ["CM013"]),
        ("feat: x\n\nBreaking change: gone", ["CM014"]),
        ("feat: x\n\nbreaking-change: gone", ["CM014"]),
        ("feat: x\n\nBREAKING CHANGE:gone", ["CM014"]),
        ("feat: x\n\nBREAKING CHANGE:", ["CM015"]),
        ("feat: x\n\nRefs: #1\nReviewed by: Ann", ["CM016"]),
    ],
)
def test_conventional_violations(message: str, expected: list[str]) -> None:
    assert codes(message) == expected


def test_body_prose_mentioning_breaking_change_is_not_a_footer() -> None:
    assert codes("feat: x\n\nBreaking changes are listed in the docs.\n\nRefs: #1") == []


def test_near_miss_type_gets_a_suggestion() -> None:
    lines, _ = cleanup("feature: add search", None)
    (v,) = check_message(lines, CONV)
    assert (v.code, v.name) == ("CM003", "type-enum")
    assert v.hint == "Did you mean `feat`?"
    assert (v.location.line, v.location.col) == (1, 1)


def test_any_type_when_types_empty() -> None:
    assert codes("whatever: fine", ANY) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("feat(BA-1234): add the thing (#5678)", []),
        ("feat(BA-4592, BA-4593): two keys", []),
        ("feat(BA-6205,BA-6206): no space", []),
        ("fix(install-dev): component scope", []),
        ("fix(client.cli): dotted scope", []),
        ("release: 26.4.4rc7", []),
        ("fix: no scope", []),
        ("perf: speed", ["CM003"]),
        ("hotfix: x", ["CM003"]),
        ("Feat: x", ["CM004"]),
        ("feat!: x", ["CM008"]),
        ("feat(BA- 3850): malformed key", ["CM005"]),
        ("feat(deps,BA-6226): mixed", ["CM005"]),
    ],
)
def test_backendai_preset(message: str, expected: list[str]) -> None:
    assert codes(message, BAI) == expected


def test_options_header_length_case_stop_body_trailers() -> None:
    s = build(
        {
            "commit": {
                "header_max_length": 20,
                "subject_case": "lower",
                "subject_full_stop": False,
                "body_max_line_length": 30,
                "required_trailers": ["Signed-off-by"],
                "forbidden_trailers": ["Change-Id"],
                "scope_required": True,
            }
        },
        "",
        "",
    ).commit
    assert codes("feat(x): a header that is too long", s) == ["CM009", "CM018"]
    assert codes("feat(x): Add it\n\nSigned-off-by: a", s) == ["CM010"]
    assert codes("feat(x): add API\n\nSigned-off-by: a", s) == []
    assert codes("feat(x): GraphQL it\n\nSigned-off-by: a", s) == []
    assert codes("feat(x): add it.\n\nSigned-off-by: a", s) == ["CM011"]
    assert codes("feat: add it\n\nSigned-off-by: a", s) == ["CM006"]
    long = "word " * 10
    assert codes(f"feat(x): add\n\n{long}\n\nSigned-off-by: a", s) == ["CM017"]
    assert codes(f"feat(x): add\n\nsee https://example.com/{long}\n\nSigned-off-by: a", s) == []
    assert (
        codes(
            f"feat(x): add\n\n{long}\n\nSigned-off-by: a",
            s,
            author="49699333+dependabot[bot]@users.noreply.github.com",
        )
        == []
    )
    assert codes("feat(x): add\n\nSigned-off-by: a\nChange-Id: I12", s) == ["CM019"]


def test_squash_suffix_does_not_count_toward_length() -> None:
    s = build({"preset": "backend.ai", "commit": {"header_max_length": 40}}, "", "").commit
    assert (
        codes("feat(BA-1): twenty-two chars here (#12345)", s) == []
    )  # 34 without, 43 with the suffix
    assert codes("feat(BA-1): twenty-two chars here and more (#12345)", s) == ["CM009"]


@pytest.mark.parametrize(
    ("message", "parents", "expected"),
    [
        ("Merge branch 'main' into feat/x", None, []),
        ("Merge remote-tracking branch 'origin/main'", None, []),
        ("Merge pull request #12 from org/feat-x", None, []),
        (
            "Merge the new parser",
            None,
            ["CM002"],
        ),  # a plain commit titled "Merge ..." is not waved through
        ("Merge the new parser", 2, []),  # in range mode the parent count decides
        ("Merge branch 'main' into feat/x", 1, ["CM002"]),  # looks like a merge, but has one parent
        (
            'Revert "feat: x"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.',
            None,
            [],
        ),
        ('Revert "feat: x"', None, ["CM002"]),  # no git-generated body
        ("fixup! feat: x", None, []),
        ("squash! feat: x", None, []),
        ("amend! feat: x\n\nfeat: better", None, []),
        ("fixup!feat: x", None, ["CM002"]),
    ],
)
def test_special_commits(message: str, parents: int | None, expected: list[str]) -> None:
    assert codes(message, parents=parents) == expected


def test_special_commits_can_be_forbidden() -> None:
    s = build(
        {
            "commit": {
                "allow_merge_commits": False,
                "allow_revert_commits": False,
                "allow_fixup_commits": False,
            }
        },
        "",
        "",
    ).commit
    assert codes("Merge branch 'main' into feat/x", s) == ["CM020"]
    assert codes("anything", s, parents=2) == ["CM020"]
    assert codes('Revert "feat: x"\n\nThis reverts commit 0123456.', s) == ["CM021"]
    assert codes("fixup! feat: x", s) == ["CM022"]


def test_cleanup_strips_comments_scissors_and_maps_lines() -> None:
    text = "\n# leading comment\nfeat: x\n\n\nbody   \n# Please enter the commit message\n# ------------------------ >8 ------------------------\ndiff --git a b\n"
    lines, numbers = cleanup(text)
    assert lines == ["feat: x", "", "body"]
    assert numbers == [3, 4, 6]


def test_cleanup_custom_comment_char_and_auto() -> None:
    text = "feat: x\n\n; Please enter the commit message for your changes.\n; ------------------------ >8 ------------------------\nmore"
    assert auto_comment(text.encode()) == b";"
    assert cleanup(text, ";")[0] == ["feat: x"]
    assert cleanup("#123 is a line\n", ";")[0] == ["#123 is a line"]


def test_decode_bom_crlf_and_bad_bytes() -> None:
    lines, numbers = git_cleanup(b"\xef\xbb\xbffeat: x\r\n\r\nbody\r\n", None).text()
    assert (lines, numbers) == (["feat: x", "", "body"], [1, 2, 3])
    with pytest.raises(DecodeFailure, match="byte 6"):
        git_cleanup(b"feat: \xff\xfe", None).text()


def test_header_parse_fields() -> None:
    h = parse_header("feat(api)!: drop v1")
    assert (h.type, h.scope, h.breaking, h.description, h.error) == (
        "feat",
        "api",
        True,
        "drop v1",
        None,
    )
    assert parse_header("feat:x").error[0] == 6


def test_footers_parse_multiline_values() -> None:
    lines = [
        "feat: x",
        "",
        "body text",
        "",
        "BREAKING CHANGE: one",
        "two",
        "Refs #12",
        "Acked-by: me",
    ]
    footers, start = parse_footers(lines)
    assert start == 4
    assert [(f.token, f.separator, f.value) for f in footers] == [
        ("BREAKING CHANGE", ": ", "one\ntwo"),
        ("Refs", " #", "12"),
        ("Acked-by", ": ", "me"),
    ]
