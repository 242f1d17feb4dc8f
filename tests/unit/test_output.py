from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit import output
from devkit.violations import WARNING, Location, Report, Violation

V = Violation(
    "CM003",
    "type-enum",
    "type `feet` is not allowed",
    Location("msg", 1, 1),
    "Did you mean `feat`?",
)
W = Violation(
    "NF003",
    "fragment-placeholder",
    "no number, yet",
    Location("changes/fix.md"),
    "Run it.",
    WARNING,
)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_is_coloured_on_a_tty_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    tty = Tty()
    output.render([Report("commit", (V,), 1)], "text", tty)
    assert "\033[31merror\033[0m" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = Tty()
    output.render([Report("commit", (V,), 1)], "text", tty)
    assert "\033[" not in tty.getvalue()
    plain = io.StringIO()
    monkeypatch.delenv("NO_COLOR")
    output.render([Report("commit", (V,), 1)], "text", plain)
    assert "\033[" not in plain.getvalue()


def test_warnings_never_fail_and_errors_do() -> None:
    assert output.exit_code([Report("news", (W,), 1)]) == 0
    assert output.exit_code([Report("news", (W, V), 2)]) == 1
    assert output.exit_code([Report("lint", (), 0, (), "ruff is not installed")]) == 1
    assert (
        output.summary_line([Report("news", (W,), 1)])
        == "devkit: 0 error(s), 1 warning(s) (1 fragment checked)"
    )


def test_github_escapes_properties_and_data(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = Violation("CM002", "header-format", "50% done\nnext", Location("a,b:c.txt", 3, 2), "x")
    assert (
        output.annotation(v)
        == "::error file=a%2Cb%3Ac.txt,line=3,col=2,title=devkit CM002 header-format::50%25 done%0Anext — x"
    )
    assert output.annotation(W).startswith("::warning file=changes/fix.md,title=")
    summary = tmp_path / "s.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = io.StringIO()
    output.render(
        [Report("commit", (V,), 1), Report("lint", (), 0, (), "ruff missing")], "github", out
    )
    text = summary.read_text()
    assert (
        "| commit | ❌ fail | 1 | 1 | 0 |" in text
        and "| lint | ⚠️ could not run | 0 | 0 | 0 |" in text
    )
    assert "**Could not run:** ruff missing" in text
    assert "::error title=devkit lint::ruff missing" in out.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_json_encoder_is_jsons(value: object) -> None:
    """output.json_encoder (no `json` import on the range path) writes what json.dumps writes."""
    import json

    assert output.json_encoder()(value) == json.dumps(value, ensure_ascii=False)


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=200, deadline=None)
@given(texts, texts, texts, texts, st.integers(0, 99), st.integers(0, 99))
def test_a_violations_json_line_is_its_dict(
    message: str, hint: str, context: str, file: str, line: int, col: int
) -> None:
    """render_json writes each violation without building its dict: what it writes reads back as
    the dict (and is one line)."""
    import json

    v = Violation(
        "CM003", "type-enum", message, Location(file, line, col, ""), hint, WARNING, context
    )
    report = Report("commit", (v,), 1)
    out = io.StringIO()
    output.render_json([report], out)
    assert json.loads(out.getvalue()) == output.as_dict([report])
    (entry,) = [x for x in out.getvalue().splitlines() if '"code": "CM003"' in x]
    assert entry.strip().startswith("{") and entry.strip().endswith("}")
