"""Every rule's explain examples: the bad one fires exactly that rule, the good one passes."""

from __future__ import annotations

import pytest

from devkit.config import build
from devkit.conventions.branch_rules import check_branch
from devkit.conventions.commit_rules import check_message
from devkit.conventions.fragment_rules import Entry, FragmentConfig, check_added, check_entry
from devkit.conventions.message import cleanup
from devkit.conventions.registry import BY_NAME, RULES, lookup

OVERRIDES: dict[str, dict] = {
    "CM004": {"commit": {"type_case": "lower"}},
    "CM005": {"preset": "backend.ai"},
    "CM006": {"commit": {"scope_required": True}},
    "CM008": {"preset": "backend.ai"},
    "CM009": {"commit": {"header_max_length": 72}},
    "CM010": {"commit": {"subject_case": "lower"}},
    "CM011": {"commit": {"subject_full_stop": False}},
    "CM017": {"commit": {"body_max_line_length": 72}},
    "CM018": {"commit": {"required_trailers": ["Signed-off-by"]}},
    "CM019": {"commit": {"forbidden_trailers": ["Change-Id"]}},
    "CM020": {"commit": {"allow_merge_commits": False}},
    "CM021": {"commit": {"allow_revert_commits": False}},
    "CM022": {"commit": {"allow_fixup_commits": False}},
    "NF006": {"news": {"single_line": True}},
}
FC = FragmentConfig("changes", ("feature", "fix", "doc"), "md")


def fired(rule, example: str) -> list[str]:
    settings = build(OVERRIDES.get(rule.code, {}), "", "")
    if rule.kind == "commit":
        lines, numbers = cleanup(example, None)
        return [v.code for v in check_message(lines, settings.commit, numbers=numbers)]
    if rule.kind == "branch":
        return [v.code for v in check_branch(example, settings.branch)]
    name, _, content = example.partition("\n")
    if rule.code == "NF008":
        return [v.code for v in check_added([name], FC, settings.news, 123)]
    data = (
        content.removesuffix("[no newline]")
        if content.endswith("[no newline]")
        else content + ("\n" if content else "")
    )
    return [v.code for v in check_entry(Entry(name, "file", data.encode()), FC, settings.news)]


@pytest.mark.parametrize("rule", [r for r in RULES if r.bad], ids=lambda r: r.code)
def test_bad_example_fires_only_its_rule(rule) -> None:
    assert fired(rule, rule.bad) == [rule.code]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_good_example_passes(rule) -> None:
    assert fired(rule, rule.good) == []


def test_codes_and_names_are_unique_and_well_formed() -> None:
    assert len({r.code for r in RULES}) == len(RULES)
    assert len(BY_NAME) == len(RULES)
    for r in RULES:
        assert r.code[:2] in ("CM", "BR", "NF") and r.code[2:].isdigit() and len(r.code) == 5
        assert r.name == r.name.lower() and " " not in r.name
        assert r.summary.endswith(".") and r.why


def test_lookup_by_code_or_name() -> None:
    assert lookup("cm003").name == "type-enum"
    assert lookup("type-enum").code == "CM003"
    assert lookup("nope") is None
