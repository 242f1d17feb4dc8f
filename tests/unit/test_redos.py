"""Issue 22: a project's regexes are refused when they can backtrack exponentially (or in a high
power of the length), and accepted in the shapes real configs use."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.config import build
from devkit.conventions.settings import PRESETS
from devkit.errors import ConfigError
from devkit.redos import backtracking_risk

REFUSED = [
    "(a+)+", r"(\w+\s?)*", "(a|ab)*", "(a|a)*x", "(.*a){20}", "(a*)*", r"(x+x+)+y",
    "(a{1,10}){1,10}", "[a-z]*[a-z]*[a-z]*x", ".*a.*a.*b", "(.*)(.*)(.*)x", "((a)+b?)+",
]  # fmt: skip
ACCEPTED = [
    r"[a-z0-9]+(-[a-z0-9]+)*", r"\d+\.\d+", r"(\w+-)*\w+", r"[0-9]{1,3}(\.[0-9]{1,3}){3}",
    "(feat|docs)+", "(?:a|b|c)*", r'([^"]*")*', "release/.+", "main", r"[A-Z][A-Z0-9]+-\d+",
    ".*foo.*", r"[a-z]+/[a-z]+/[a-z]+", "(ß+-)+",
]  # fmt: skip


@pytest.mark.parametrize("pattern", REFUSED)
def test_exponential_shapes_are_refused(pattern: str) -> None:
    assert backtracking_risk(pattern)
    with pytest.raises(ConfigError, match="can take exponential time on a near miss"):
        build({"commit": {"types": pattern}}, "pyproject.toml", "")
    with pytest.raises(ConfigError, match=r"tool\.devkit\.branch\.exempt"):
        build({"branch": {"exempt": [pattern]}}, "pyproject.toml", "")


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_everyday_shapes_are_accepted(pattern: str) -> None:
    assert backtracking_risk(pattern) == ""


def test_the_presets_own_regexes_are_accepted() -> None:
    for preset in PRESETS.values():
        for table in preset.values():
            for value in table.values():
                for pattern in value if isinstance(value, tuple) else (value,):
                    if isinstance(pattern, str):
                        assert backtracking_risk(pattern.replace("{types}", "x")) == "", pattern


pieces = st.sampled_from(
    ["a", "b", ".", "(", ")", "(?:", "|", "*", "+", "?", "{2,}", "[ab]", r"\w"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(pieces, max_size=12).map("".join))
def test_any_pattern_gets_an_answer(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error:
        return
    assert isinstance(backtracking_risk(pattern), str)
