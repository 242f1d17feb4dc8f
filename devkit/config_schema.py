"""The schema of `[tool.devkit]` (devkit.schema tables) and its validation into plain data: values
that `marshal` can cache (devkit.config keeps the validated result in .git, so that a warm hook run
never imports this module)."""

from __future__ import annotations

from typing import Any

from devkit import schema as s
from devkit.conventions.registry import RULES, lookup
from devkit.conventions.settings import PRESETS, BranchSettings, CommitSettings, NewsSettings


def _preset(value: Any, where: s.Where) -> str:
    if not isinstance(value, str):
        raise where.fail(f"expected a string, got {type(value).__name__} {value!r}")
    if value not in PRESETS:
        raise where.fail(f"unknown preset {value!r}", f"Use one of: {', '.join(PRESETS)}.")
    return value


def _branch_pattern(value: str, where: s.Where) -> str:
    s.regex()(value.replace("{types}", "x"), where)
    return value


def _auto_or_bool(value: Any, where: s.Where) -> bool | str:
    if value == "auto" or isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    raise where.fail(f'expected true, false or "auto", got {type(value).__name__} {value!r}')


_C = CommitSettings()
COMMIT = s.Table(
    s.Key("types", s.strings_or_regex(), _C.types, "a list, or a regex string; [] allows any type"),
    s.Key("type_case", s.choice("any", "lower"), _C.type_case),
    s.Key("scopes", s.strings_or_regex(), _C.scopes, "a list or a regex; [] allows any scope"),
    s.Key("scope_patterns", s.strings(s.regex()), _C.scope_patterns, "regexes, e.g. ticket keys"),
    s.Key("scope_dirs", s.strings(), _C.scope_dirs, 'folder globs: "src/pkg/*" allows each name'),
    s.Key("scope_delimiter", s.string(), _C.scope_delimiter),
    s.Key("scope_required", s.boolean(), _C.scope_required),
    s.Key("allow_breaking_marker", s.boolean(), _C.allow_breaking_marker),
    s.Key("header_max_length", s.integer(), _C.header_max_length, "0: no limit"),
    s.Key("subject_case", s.choice("any", "lower", "upper"), _C.subject_case),
    s.Key("subject_full_stop", s.boolean(), _C.subject_full_stop),
    s.Key("body_max_line_length", s.integer(), _C.body_max_line_length),
    s.Key("squash_suffix", s.boolean(), _C.squash_suffix),
    s.Key("lenient_header", s.boolean(), _C.lenient_header),
    s.Key("required_trailers", s.strings(), _C.required_trailers),
    s.Key("forbidden_trailers", s.strings(), _C.forbidden_trailers),
    s.Key("allow_merge_commits", s.boolean(), _C.allow_merge_commits),
    s.Key("allow_revert_commits", s.boolean(), _C.allow_revert_commits),
    s.Key("allow_fixup_commits", s.boolean(), _C.allow_fixup_commits),
)
_B = BranchSettings()
BRANCH = s.Table(
    s.Key("types", s.strings(), _B.types),
    s.Key("patterns", s.strings(_branch_pattern), _B.patterns),
    s.Key("forms", s.strings(), _B.forms),
    s.Key("exempt", s.strings(s.regex()), _B.exempt),
)
_N = NewsSettings()
NEWS = s.Table(
    s.Key("single_line", s.boolean(), _N.single_line),
    s.Key("allow_placeholders", s.boolean(), _N.allow_placeholders),
    s.Key("require", s.boolean(), _N.require),
    s.Key("exempt", s.strings(), _N.exempt),
    s.Key("skip_labels", s.strings(), _N.skip_labels),
    s.Key("skip_title_prefixes", s.strings(), _N.skip_title_prefixes),
    s.Key("skip_trigger_labels", s.strings(), _N.skip_trigger_labels),
    s.Key("assign_workflow", _auto_or_bool, _N.assign_workflow),
)
CI_CHECKS = ("branch", "commit", "title", "news", "lint")


def _ci_check(value: str, where: s.Where) -> str:
    if value not in CI_CHECKS:
        raise where.fail(f"unknown check {value!r}", f"Use some of: {', '.join(CI_CHECKS)}.")
    return value


# the tables the other commands read (validated when they are read: `section`)
SECTIONS: dict[str, s.Table] = {
    "ci": s.Table(
        s.Key("base", s.string(), None),
        s.Key("checks", s.strings(_ci_check), CI_CHECKS),
        s.Key("deepen", s.boolean(), None),
        s.Key("commit_severity", s.choice("error", "warning"), "error"),
    ),
    "lint": s.Table(
        s.Key("base", s.string(), None),
        s.Key("ruff", s.string(r"\d+\.\d+\.\d+", 'a ruff version such as "0.14.0"'), None),
    ),
    # empty: the generated hooks install monorepo-devkit from the package index (`repo: local`)
    "init": s.Table(s.Key("devkit_repo", s.string(), "")),
}


def _rules(value: Any, where: s.Where) -> dict[str, str]:
    """{code or name: severity} -> {code: severity}."""
    table = s.mapping(s.choice("error", "warning", "off"))(value, where)
    out = {}
    for name, severity in table.items():
        rule = lookup(name)
        if rule is None:
            raise s.unknown_key(
                where, name, tuple(r.code for r in RULES) + tuple(r.name for r in RULES)
            )
        out[rule.code] = severity
    return out


TOP = s.Table(
    s.Key("preset", _preset, "conventional"),
    s.Key("rules", _rules, None, "rule code or name -> error | warning | off"),
    s.Key("commit", s.anything(), None),
    s.Key("branch", s.anything(), None),
    s.Key("news", s.anything(), None),
    *(s.Key(name, s.anything(), None) for name in SECTIONS),
    # provisioning's tables: devkit.provision validates them
    *(s.Key(name, s.anything(), None) for name in ("hosts", "provision", "sandbox")),
)
EXTRA = tuple(n for n in TOP.names if n not in ("preset", "rules", "commit", "branch", "news"))


def validate(table: dict[str, Any], source: str) -> dict[str, Any]:
    """A raw [tool.devkit] table, validated and merged over its preset, as plain data."""
    where = s.Where(source, "tool.devkit")
    top = s.validate(TOP, table, where)
    preset = top["preset"]
    defaults = PRESETS[preset]
    commit = s.validate(COMMIT, top["commit"], where.key("commit"), defaults.get("commit", {}))
    branch_defaults = dict(defaults.get("branch", {}))
    if "types" not in branch_defaults and isinstance(commit["types"], tuple):
        branch_defaults["types"] = commit["types"]
    return {
        "preset": preset,
        "commit": commit,
        "branch": s.validate(BRANCH, top["branch"], where.key("branch"), branch_defaults),
        "news": s.validate(NEWS, top["news"], where.key("news"), defaults.get("news", {})),
        "rules": {**defaults.get("rules", {}), **(top["rules"] or {})},
        "extra": {k: table[k] for k in EXTRA if k in table},
    }


def section(preset: str, extra: dict[str, Any], source: str, name: str) -> dict[str, Any]:
    where = s.Where(source, f"tool.devkit.{name}")
    defaults = PRESETS.get(preset, {}).get(name, {})
    return s.validate(SECTIONS[name], extra.get(name), where, defaults)
