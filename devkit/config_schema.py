"""The schema of `[tool.devkit]` (devkit.schema tables) and its validation into plain data: values
that `marshal` can cache (devkit.config keeps the validated result in .git, so that a warm hook run
never imports this module)."""

from __future__ import annotations

from typing import Any

from devkit import schema as s
from devkit.conventions.registry import RULES, lookup
from devkit.conventions.settings import PRESETS, BranchSettings, CommitSettings, NewsSettings


def _preset(value: Any, where: s.Where) -> str:
    """one of the presets: "conventional", "backend.ai"."""
    if not isinstance(value, str):
        raise where.fail(f"expected a string, got {type(value).__name__} {value!r}")
    if value not in PRESETS:
        raise where.fail(f"unknown preset {value!r}", f"Use one of: {', '.join(PRESETS)}.")
    return value


def _branch_pattern(value: str, where: s.Where) -> str:
    """a regular expression; `{types}` stands for the branch types"""
    s.regex()(value.replace("{types}", "x"), where)
    return value


def _backport_branch(value: Any, where: s.Where) -> str:
    """a regular expression with a `number` group ("" : none)"""
    s.regex()(value, where)
    if value and "(?P<number>" not in value:
        raise where.fail(
            f"{value!r} has no `number` group",
            "Name the backported pull request's number, e.g. `backport/(?P<number>\\d+)-to-.+`.",
        )
    return value  # type: ignore[no-any-return]


def _auto_or_bool(value: Any, where: s.Where) -> bool | str:
    """true, false or "auto"."""
    if value == "auto" or isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    raise where.fail(f'expected true, false or "auto", got {type(value).__name__} {value!r}')


_C = CommitSettings()
COMMIT = s.Table(
    s.Key(
        "types",
        s.strings_or_regex(),
        _C.types,
        "the allowed commit types: a list, or a regex string; [] allows any type (in any script)",
    ),
    s.Key("type_case", s.choice("any", "lower"), _C.type_case, "how the type is written"),
    s.Key(
        "scopes",
        s.strings_or_regex(),
        _C.scopes,
        "the allowed scopes: a list or a regex; with `scope_patterns` and `scope_dirs` also empty, "
        "any scope",
    ),
    s.Key(
        "scope_patterns",
        s.strings(s.regex()),
        _C.scope_patterns,
        "regexes a scope may match, e.g. ticket keys `BA-\\d+`",
    ),
    s.Key(
        "scope_dirs",
        s.strings(),
        _C.scope_dirs,
        "folder globs, each folder's name a scope: `src/ai/backend/*` allows manager, agent, ...",
    ),
    s.Key(
        "scope_delimiter",
        s.string(),
        _C.scope_delimiter,
        'what separates several scopes in one header, `fix(api,cli): x` ("" : one scope only)',
    ),
    s.Key("scope_required", s.boolean(), _C.scope_required, "every header names a scope"),
    s.Key(
        "allow_breaking_marker",
        s.boolean(),
        _C.allow_breaking_marker,
        "the `!` of `feat!: x` is allowed",
    ),
    s.Key(
        "header_max_length",
        s.integer(),
        _C.header_max_length,
        "the longest header, in characters; 0: no limit",
    ),
    s.Key(
        "subject_case",
        s.choice("any", "lower", "upper"),
        _C.subject_case,
        "how the description starts (acronyms such as API always pass)",
    ),
    s.Key(
        "subject_full_stop",
        s.boolean(),
        _C.subject_full_stop,
        "a trailing `.` is allowed (false: it is a violation)",
    ),
    s.Key(
        "body_max_line_length",
        s.integer(),
        _C.body_max_line_length,
        "the longest body line; 0: no limit (lines with a URL, footers and bot commits are exempt)",
    ),
    s.Key(
        "squash_suffix",
        s.boolean(),
        _C.squash_suffix,
        "GitHub's squash-merge suffix ` (#123)` is accepted after the description",
    ),
    s.Key(
        "lenient_header",
        s.boolean(),
        _C.lenient_header,
        "a header whose only fault is the spacing after `:` or an empty description is a warning",
    ),
    s.Key(
        "required_trailers",
        s.strings(),
        _C.required_trailers,
        'trailers every message has, e.g. ["Signed-off-by"]',
    ),
    s.Key("forbidden_trailers", s.strings(), _C.forbidden_trailers, "trailers no message has"),
    s.Key(
        "allow_merge_commits",
        s.boolean(),
        _C.allow_merge_commits,
        "merge commits (by their parent count) are not checked",
    ),
    s.Key(
        "allow_revert_commits",
        s.boolean(),
        _C.allow_revert_commits,
        'git\'s own `Revert "..."` messages are not checked',
    ),
    s.Key(
        "allow_fixup_commits",
        s.boolean(),
        _C.allow_fixup_commits,
        "git's `fixup!`, `squash!` and `amend!` messages are not checked",
    ),
    s.Key(
        "severity",
        s.choice("error", "warning"),
        _C.severity,
        '"warning": a commit message never fails, in the hooks and in `devkit ci` alike (a project '
        "that squash-merges: the pull request title is what lands, and `devkit check title` checks it)",
    ),
)
_B = BranchSettings()
BRANCH = s.Table(
    s.Key(
        "types",
        s.strings(),
        _B.types,
        "the branch types `{types}` stands for (default: the preset's, else the commit types)",
    ),
    s.Key(
        "patterns",
        s.strings(_branch_pattern),
        _B.patterns,
        "regexes a branch name fully matches; `{types}` expands to the branch types",
    ),
    s.Key(
        "forms", s.strings(), _B.forms, "how the patterns read in messages, e.g. `<type>/<slug>`"
    ),
    s.Key(
        "exempt",
        s.strings(s.regex()),
        _B.exempt,
        "regexes of branch names that are never checked (main, release branches, bots)",
    ),
)
_N = NewsSettings()
NEWS = s.Table(
    s.Key("single_line", s.boolean(), _N.single_line, "a fragment is one line, one sentence"),
    s.Key(
        "allow_placeholders",
        s.boolean(),
        _N.allow_placeholders,
        "a fragment without a number yet (`fix.md`) is a warning, not an error",
    ),
    s.Key(
        "require",
        s.boolean(),
        _N.require,
        "with a base, the branch must add a fragment (`devkit check news --base`, `devkit ci`)",
    ),
    s.Key(
        "exempt",
        s.strings(),
        _N.exempt,
        "file names in the fragment directory that are not fragments",
    ),
    s.Key(
        "skip_labels",
        s.strings(),
        _N.skip_labels,
        "globs: `devkit ci` skips the fragment check for a pull request with such a label",
    ),
    s.Key(
        "skip_title_prefixes",
        s.strings(),
        _N.skip_title_prefixes,
        "`devkit ci` skips the fragment check for a title with such a type (`release: 26.4.0`)",
    ),
    s.Key(
        "skip_trigger_labels",
        s.strings(),
        _N.skip_trigger_labels,
        "globs: ...and for a run started by adding or removing such a label",
    ),
    s.Key(
        "assign_workflow",
        _auto_or_bool,
        _N.assign_workflow,
        "placeholders are numbered by a workflow, so a pull request may add them; "
        "\"auto\": when `.github/workflows/devkit-news-assign.yml` (devkit's) or Backend.AI's "
        "`timeline-check.yml` with its `assign-pr-number.yml` exists",
    ),
    s.Key(
        "backport_branch",
        _backport_branch,
        _N.backport_branch,
        "a regex of backport branches, its `number` group the backported pull request, e.g. "
        "`backport/(?P<number>\\d+)-to-.+`: a backport's fragment keeps that number",
    ),
    s.Key(
        "backport_bases",
        s.strings(s.regex()),
        _N.backport_bases,
        "regexes of the branches backports go to (release branches, e.g. `\\d+\\.\\d+`); a pull "
        "request to one whose title ends with ` (#N)` keeps N too",
    ),
)
CI_CHECKS = ("branch", "commit", "title", "news", "lint")


def _ci_check(value: str, where: s.Where) -> str:
    """one of "branch", "commit", "title", "news", "lint"."""
    if value not in CI_CHECKS:
        raise where.fail(f"unknown check {value!r}", f"Use some of: {', '.join(CI_CHECKS)}.")
    return value


# the tables the other commands read (validated when they are read: `section`)
SECTIONS: dict[str, s.Table] = {
    "ci": s.Table(
        s.Key(
            "base",
            s.string(),
            None,
            "the base when neither `--base` nor `GITHUB_BASE_REF` gives one (default: origin's "
            "default branch)",
        ),
        s.Key("checks", s.strings(_ci_check), CI_CHECKS, "what `devkit ci` runs"),
        s.Key(
            "deepen",
            s.boolean(),
            None,
            "fetch more history when the clone is too shallow (default: on in GitHub Actions)",
        ),
        # one verdict for the hook and the CI step: the severity is the commit table's now
        s.Key(
            "commit_severity",
            s.moved("`[tool.devkit.commit] severity`"),
            None,
            "moved to `[tool.devkit.commit] severity`",
        ),
    ),
    "lint": s.Table(
        s.Key(
            "base",
            s.string(),
            None,
            "what `devkit lint` compares with when `--base` gives nothing (default: origin's "
            "default branch)",
        ),
        s.Key(
            "ruff",
            s.string(r"\d+\.\d+\.\d+", 'a ruff version such as "0.14.0"'),
            None,
            "the ruff to run (default: the project's pin, else devkit's own)",
        ),
    ),
    "init": s.Table(
        s.Key(
            "devkit_repo",
            s.string(),
            "",
            "devkit's repository URL for the hooks `devkit init` writes into "
            ".pre-commit-config.yaml (empty: a `repo: local` hook that installs monorepo-devkit "
            "from the package index)",
        )
    ),
}


def _rules(value: Any, where: s.Where) -> dict[str, str]:
    """a table of rule codes or names, each "error", "warning" or "off"

    {code or name: severity} -> {code: severity}."""
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
    s.Key("preset", _preset, "conventional", "the defaults every other table starts from"),
    s.Key("rules", _rules, None, "a rule's severity, by code or name, over the preset's"),
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
