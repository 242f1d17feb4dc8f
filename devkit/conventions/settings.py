"""Typed settings for the checks and the built-in presets (devkit.config holds their schema)."""

from __future__ import annotations

from devkit.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from typing import Any

# A list setting may also be a single regex string ("list or regex").
Pattern = tuple[str, ...] | str
# the longest text a project's regex is matched against: re has no time limit, and no type, scope
# or branch name is longer (the config's regexes are checked for exponential shapes: devkit.redos)
MATCH_LIMIT = 256


class CommitSettings(Record):
    types: Pattern = ()  # empty: any noun is a type
    type_case: str = "any"  # "any" | "lower"
    scopes: Pattern = ()  # with scope_patterns and scope_dirs all empty: any scope
    scope_patterns: tuple[str, ...] = ()  # regexes a scope may fullmatch (e.g. ticket keys)
    scope_dirs: tuple[str, ...] = ()  # globs of folders whose names are scopes ("src/pkg/*")
    folder_scopes: tuple[str, ...] = ()  # scope_dirs resolved to names (by devkit.config)
    scope_delimiter: str = ","
    scope_required: bool = False
    allow_breaking_marker: bool = True
    header_max_length: int = 0  # 0: no limit
    subject_case: str = "any"  # "any" | "lower" | "upper"
    subject_full_stop: bool = True  # False: a trailing "." is a violation
    body_max_line_length: int = 0
    squash_suffix: bool = False  # accept GitHub's " (#123)" squash-merge suffix
    # a header whose only fault is the spacing after `:` or an empty description is a warning
    lenient_header: bool = False
    required_trailers: tuple[str, ...] = ()
    forbidden_trailers: tuple[str, ...] = ()
    allow_merge_commits: bool = True
    allow_revert_commits: bool = True
    allow_fixup_commits: bool = True
    # "warning": a commit message never fails (hooks, `check commit`, `devkit ci`), for a project
    # that squash-merges: the pull request's title becomes the commit (`devkit check title`)
    severity: str = "error"


class BranchSettings(Record):
    types: tuple[str, ...] = ()
    # regexes, full match; "{types}" expands to the alternation of `types`
    patterns: tuple[str, ...] = (r"(?P<type>{types})/(?P<slug>[a-z0-9][a-z0-9._-]*)",)
    forms: tuple[str, ...] = ("<type>/<slug>",)  # how the patterns read to a person
    exempt: tuple[str, ...] = ("main", "master", "develop")  # regexes, full match


class NewsSettings(Record):
    single_line: bool = False
    allow_placeholders: bool = True
    require: bool = True
    exempt: tuple[str, ...] = (
        "README.md",
        "README.rst",
        "README",
        "template.md",
        "template.rst",
        ".gitignore",
        ".gitkeep",
        ".keep",
    )
    skip_labels: tuple[str, ...] = (
        "skip:changelog",
    )  # globs: `devkit ci` skips the fragment check
    skip_title_prefixes: tuple[str, ...] = ()
    # globs: a run started by adding or removing one of these labels skips the fragment check
    skip_trigger_labels: tuple[str, ...] = ()
    # placeholders (fix.md) are numbered by a workflow: accepted in a pull request; "auto": when
    # devkit's news-assign workflow or Backend.AI's timeline-check.yml is there
    assign_workflow: bool | str = "auto"
    # a backport keeps the fragment number of the pull request it backports: a pull request to one
    # of these bases (regexes) whose branch names that number (`number` group) or whose title ends
    # with the squash suffix ` (#N)`
    backport_branch: str = ""
    backport_bases: tuple[str, ...] = ()


class Settings(Record):
    preset: str = "conventional"
    commit: CommitSettings = CommitSettings()
    branch: BranchSettings = BranchSettings()
    news: NewsSettings = NewsSettings()
    rules: dict[str, str] = {}  # rule code -> "error" | "warning" | "off" ([tool.devkit.rules])
    source: str = ""  # the file the settings came from ("" = built-in defaults)
    root: str = ""  # the directory of that file
    extra: dict[str, Any] = {}


CONVENTIONAL_TYPES = (
    "build",
    "chore",
    "ci",
    "docs",
    "feat",
    "fix",
    "perf",
    "refactor",
    "revert",
    "style",
    "test",
)
# .github/workflows/pr-prefix.yml's list, plus the area prefixes changes/README.md documents
BACKENDAI_TYPES = (
    "feat",
    "fix",
    "docs",
    "doc",
    "refactor",
    "ci",
    "chore",
    "release",
    "test",
    "deps",
    "repo",
    "setup",
)

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Conventional Commits 1.0.0 with the type list commitlint and conventional-pre-commit use by default
    "conventional": {
        "commit": {"types": CONVENTIONAL_TYPES},
        "branch": {
            "types": (*CONVENTIONAL_TYPES, "feature", "hotfix", "release"),
            "exempt": (
                "main",
                "master",
                "develop",
                r"dependabot/.+",
                r"renovate/.+",
                r"release/.+",
            ),
        },
        "news": {},
    },
    # lablup/backend.ai: errors exactly where its CI fails (pr-prefix.yml reads only the type before
    # the first `:`; towncrier check and assign-pr-number read fragment names), warnings for what
    # CONTRIBUTING.md and changes/README.md recommend (scopes, branch names, one-sentence fragments)
    "backend.ai": {
        "rules": {"CM005": "warning", "BR001": "warning", "BR002": "warning", "NF006": "warning"},
        # the project squash-merges: commits inside a pull request are free-form (hooks and CI
        # alike), the title is what lands and what pr-prefix.yml checks
        "commit": {
            "severity": "warning",
            "types": BACKENDAI_TYPES,
            "type_case": "lower",
            "lenient_header": True,
            "scopes": r"BA-\d+(?:, ?BA-\d+)*|(?!BA-)[A-Za-z0-9][A-Za-z0-9_.\-/]*",
            "scope_delimiter": "",
            "allow_breaking_marker": False,
            "squash_suffix": True,
        },
        "branch": {
            "types": (*BACKENDAI_TYPES, "feature", "hotfix", "maintenance", "perf", "topic"),
            "patterns": (
                r"(?P<type>{types})/(?P<ticket>BA-\d+)(?:[-/](?P<slug>[a-z0-9][a-z0-9._-]*))?",
                r"(?P<type>{types})/(?P<slug>[a-z0-9][a-z0-9._-]*)",
            ),
            "forms": ("<type>/BA-<n>[-<slug>]", "<type>/<slug>"),
            "exempt": (
                "main",
                r"\d+\.\d+",  # release branches, `26.4` and old ones such as `1.2`
                r"release/.+",
                r"backport/.+",
                r"gh-readonly-queue/.+",  # GitHub's merge queue
                r"(?:dependabot|renovate|claude|copilot)/.+",  # bots and coding agents
            ),
        },
        "news": {
            "single_line": True,
            "skip_labels": ("skip:changelog",),
            "skip_title_prefixes": ("release",),
            # timeline-check.yml: a process label added or removed does not re-run the check
            "skip_trigger_labels": ("flow:*",),
            # backport.yml: `backport/<PR>-to-<X.Y>` into the release branch `X.Y`, titled with the
            # original's ` (#<PR>)`; the fragment keeps that number (changes/README.md)
            "backport_branch": r"backport/(?P<number>\d+)-to-.+",
            "backport_bases": (r"\d+\.\d+",),
        },
    },
}
