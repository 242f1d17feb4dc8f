"""The one did-you-mean (rules, config keys, CLI commands)."""

from __future__ import annotations

import pytest

from devkit.conventions.suggest import did_you_mean, distance, hint


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("", "", 0),
        ("fix", "fix", 0),
        ("fxi", "fix", 1),
        ("feet", "feat", 1),
        ("", "abc", 3),
        ("kitten", "sitting", 3),
    ],
)
def test_distance(a: str, b: str, d: int) -> None:
    assert distance(a, b) == d == distance(b, a)


@pytest.mark.parametrize(
    ("word", "choices", "guess"),
    [
        ("feet", ("feat", "fix"), "feat"),
        ("FIX", ("feat", "fix"), "fix"),
        ("feature", ("feat", "fix"), "feat"),
        ("bug", ("bugfix", "doc"), "bugfix"),
        ("bugfix", ("feature", "fix"), "fix"),
        ("header_max_lenght", ("header_max_length", "types"), "header_max_length"),
        ("chek commit", ("check commit", "check branch", "ci"), "check commit"),
        ("zzzzzz", ("feat", "fix"), ""),
        ("x", (), ""),
    ],
)
def test_did_you_mean(word: str, choices: tuple[str, ...], guess: str) -> None:
    assert did_you_mean(word, choices) == guess


def test_hint() -> None:
    assert hint("feet", ["feat"]) == "Did you mean `feat`?"
    assert hint("zzzz", ["feat"], "Use feat.") == "Use feat."


def test_no_difflib_anywhere() -> None:
    """One algorithm: devkit never imports difflib for suggestions."""
    import ast
    from pathlib import Path

    import devkit

    for f in Path(devkit.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "get_close_matches":
                raise AssertionError(f"{f} uses difflib.get_close_matches")


def test_the_compared_word_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22: the edit distance is quadratic; a 3 MB "type" took over 30 s. Counted, not timed."""
    from devkit.conventions import suggest

    compared: list[int] = []
    real = suggest.distance
    monkeypatch.setattr(suggest, "distance", lambda a, b: compared.append(len(a)) or real(a, b))
    types = ("build", "chore", "feat", "fix", "refactor")
    assert did_you_mean("q" * 3_000_000, types) == ""
    assert did_you_mean("feet", types) == "feat"
    assert compared and max(compared) <= suggest.MAX_WORD
