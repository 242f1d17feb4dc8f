"""The hand-written scans on the hook path agree with the regular expressions they replace."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.conventions.message import footer_match, parse_header

FOOTER = r"^(?P<token>BREAKING CHANGE|[A-Za-z0-9][A-Za-z0-9-]*)(?P<sep>: | #)(?P<value>.*)$"
pieces = st.sampled_from(
    ["BREAKING CHANGE", "BREAKING", " CHANGE", "Refs", "-", ":", " ", "#", "x", "é", "1", "_", "\r"]
)
# one line each: the scan runs on a message's lines, which never hold a line feed (and `$` would
# match before a final one, where the scan keeps it in the value)
lines = st.one_of(st.text(max_size=30), st.lists(pieces, max_size=8).map("".join)).filter(
    lambda s: "\n" not in s
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(lines)
def test_footer_match_is_the_trailer_regex(line: str) -> None:
    m = re.match(FOOTER, line)
    assert footer_match(line) == ((m["token"], m["sep"], m["value"]) if m else None)


def test_types_may_be_any_script() -> None:
    # issue 12 item 26: the spec names no character set for the type
    h = parse_header("修正(ui): 버튼 수정")
    assert (h.type, h.scope, h.description, h.error) == ("修正", "ui", "버튼 수정", None)
    assert parse_header("-x: y").error[1] == "the header must start with a type, found `-`"
