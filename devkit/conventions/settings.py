"""Typed settings for the checks and the built-in presets (devkit.config holds their schema)."""

from __future__ import annotations

from devkit.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from typing import Any

# A list setting may also be a single regex string ("list or regex").
Pattern = tuple[str, ...] | str


class CommitSettings(Record):
    types: Pattern = ()  # empty: any noun is a type
    type_case: str = "any"  # "any" | "lower"
    scopes: Pattern = ()  # empty: any scope
    scope_delimiter: str = ","
    scope_required: bool = False
    allow_breaking_marker: bool = True
    header_max_length: int = 0  # 0: no limit
    subject_case: str = "any"  # "any" | "lower" | "upper"
    subject_full_stop: bool = True  # False: a trailing "." is a violation
    body_max_line_length: int = 0
    squash_suffix: bool = False  # accept GitHub's " (#123)" squash-merge suffix
    required_trailers: tuple[str, ...] = ()
    forbidden_trailers: tuple[str, ...] = ()
    allow_merge_commits: bool = True
    allow_revert_commits: bool = True
    allow_fixup_commits: bool = True


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
    skip_labels: tuple[str, ...] = ("skip:changelog",)
    skip_title_prefixes: tuple[str, ...] = ()


class Settings(Record):
    preset: str = "conventional"
    commit: CommitSettings = CommitSettings()
    branch: BranchSettings = BranchSettings()
    news: NewsSettings = NewsSettings()
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
    # lablup/backend.ai: .github/workflows/pr-prefix.yml, changes/README.md, branch habits (reference/backendai.md)
    "backend.ai": {
        "commit": {
            "types": BACKENDAI_TYPES,
            "type_case": "lower",
            "scopes": r"BA-\d+(?:, ?BA-\d+)*|(?!BA-)[A-Za-z0-9][A-Za-z0-9_.\-/]*",
            "scope_delimiter": "",
            "allow_breaking_marker": False,
            "squash_suffix": True,
        },
        "branch": {
            "types": (*BACKENDAI_TYPES, "feature", "hotfix", "perf", "topic"),
            "patterns": (
                r"(?P<type>{types})/(?P<ticket>BA-\d+)(?:[-/](?P<slug>[a-z0-9][a-z0-9._-]*))?",
                r"(?P<type>{types})/(?P<slug>[a-z0-9][a-z0-9._-]*)",
            ),
            "forms": ("<type>/BA-<n>[-<slug>]", "<type>/<slug>"),
            "exempt": ("main", r"\d{2}\.\d{1,2}", r"release/.+", r"backport/.+", r"dependabot/.+"),
        },
        "news": {
            "single_line": True,
            "skip_labels": ("skip:changelog",),
            "skip_title_prefixes": ("release",),
        },
        # the project squash-merges: commits inside a pull request are free-form, the title is what lands
        "ci": {"commit_severity": "warning"},
    },
}
