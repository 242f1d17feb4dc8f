"""`[tool.devkit]` in pyproject.toml: found, parsed with tomllib, validated against its schema (below),
merged over a preset."""

from __future__ import annotations

import marshal  # built in
import os

from devkit import schema as s
from devkit.conventions.settings import (
    PRESETS,
    BranchSettings,
    CommitSettings,
    NewsSettings,
    Settings,
)
from devkit.errors import ConfigError
from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

CACHE_NAME = "devkit-config.cache"


def find_pyproject(start: str | os.PathLike[str] | None = None) -> tuple[str | None, str | None]:
    """(nearest pyproject.toml up to the repository root, that root's .git directory)."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        dotgit = os.path.join(here, ".git")
        gitdir = dotgit if os.path.isdir(dotgit) else None
        if os.path.isfile(candidate):
            return candidate, gitdir or _gitdir_above(here)
        if os.path.exists(dotgit):
            return None, gitdir
        parent = os.path.dirname(here)
        if parent == here:
            return None, None
        here = parent


def _gitdir_above(here: str) -> str | None:
    while True:
        if os.path.isdir(os.path.join(here, ".git")):
            return os.path.join(here, ".git")
        if os.path.exists(os.path.join(here, ".git")) or os.path.dirname(here) == here:
            return None
        here = os.path.dirname(here)


def _read_table(file: str, gitdir: str | None) -> dict[str, Any]:
    """[tool.devkit] from file. The hook paths run on every commit and tomllib costs them ~5 ms
    of imports, so the parsed table is cached in .git, keyed by the file's identity (marshal: built in)."""
    try:
        st = os.stat(file)
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    key = (os.path.abspath(file), st.st_mtime_ns, st.st_size, st.st_ino)
    cache = os.path.join(gitdir, CACHE_NAME) if gitdir else None
    if cache:
        try:
            with open(cache, "rb") as fh:
                cached_key, table = marshal.load(fh)
            if tuple(cached_key) == key:
                return table  # type: ignore[no-any-return]
        except (OSError, EOFError, ValueError, TypeError):
            pass
    import tomllib  # ~5 ms, only when the cache is cold

    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", f"not valid UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            file, "", f"invalid TOML: {exc}", "Fix the TOML syntax at that line."
        ) from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(file, "tool", "must be a table")
    table = tool.get("devkit", {})
    if not isinstance(table, dict):
        raise ConfigError(file, "tool.devkit", "must be a table")
    if cache:
        try:
            tmp = f"{cache}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                marshal.dump((key, table), fh)
            os.replace(tmp, cache)
        except (OSError, ValueError):  # read-only .git, or a value marshal cannot store (dates)
            pass
    return table


def load(
    start: str | os.PathLike[str] | None = None, path: str | os.PathLike[str] | None = None
) -> Settings:
    """Settings from the nearest pyproject.toml (up to the repository root), or the defaults."""
    if path:
        file, gitdir = os.fspath(path), None
    else:
        file, gitdir = find_pyproject(start)
    if file is None:
        return build({}, "", "")
    table = _read_table(file, gitdir)
    return build(table, file, os.path.dirname(os.path.abspath(file)))


# --- the schema of [tool.devkit] ------------------------------------------------------------------


def _preset(value: Any, where: s.Where) -> str:
    if not isinstance(value, str):
        raise where.fail(f"expected a string, got {type(value).__name__} {value!r}")
    if value not in PRESETS:
        raise where.fail(f"unknown preset {value!r}", f"Use one of: {', '.join(PRESETS)}.")
    return value


def _branch_pattern(value: str, where: s.Where) -> str:
    s.regex()(value.replace("{types}", "x"), where)
    return value


_C = CommitSettings()
COMMIT = s.Table(
    s.Key("types", s.strings_or_regex(), _C.types, "a list, or a regex string; [] allows any type"),
    s.Key("type_case", s.choice("any", "lower"), _C.type_case),
    s.Key("scopes", s.strings_or_regex(), _C.scopes, "a list or a regex; [] allows any scope"),
    s.Key("scope_delimiter", s.string(), _C.scope_delimiter),
    s.Key("scope_required", s.boolean(), _C.scope_required),
    s.Key("allow_breaking_marker", s.boolean(), _C.allow_breaking_marker),
    s.Key("header_max_length", s.integer(), _C.header_max_length, "0: no limit"),
    s.Key("subject_case", s.choice("any", "lower", "upper"), _C.subject_case),
    s.Key("subject_full_stop", s.boolean(), _C.subject_full_stop),
    s.Key("body_max_line_length", s.integer(), _C.body_max_line_length),
    s.Key("squash_suffix", s.boolean(), _C.squash_suffix),
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
    "lint": s.Table(s.Key("base", s.string(), None)),
    "init": s.Table(s.Key("devkit_repo", s.string(), "https://github.com/devkit-dev/devkit")),
}
TOP = s.Table(
    s.Key("preset", _preset, "conventional"),
    s.Key("commit", s.anything(), None),
    s.Key("branch", s.anything(), None),
    s.Key("news", s.anything(), None),
    *(s.Key(name, s.anything(), None) for name in SECTIONS),
    # provisioning's tables: devkit.provision validates them
    *(s.Key(name, s.anything(), None) for name in ("hosts", "provision", "sandbox")),
)
EXTRA = tuple(n for n in TOP.names if n not in ("preset", "commit", "branch", "news"))


def build(table: dict[str, Any], source: str, root: str) -> Settings:
    """Settings from a raw [tool.devkit] table: validated, merged over its preset."""
    where = s.Where(source, "tool.devkit")
    top = s.validate(TOP, table, where)
    preset = top["preset"]
    defaults = PRESETS[preset]
    commit = CommitSettings(
        **s.validate(COMMIT, top["commit"], where.key("commit"), defaults.get("commit", {}))
    )
    branch_defaults = dict(defaults.get("branch", {}))
    if "types" not in branch_defaults and isinstance(commit.types, tuple):
        branch_defaults["types"] = commit.types
    branch = BranchSettings(
        **s.validate(BRANCH, top["branch"], where.key("branch"), branch_defaults)
    )
    news = NewsSettings(
        **s.validate(NEWS, top["news"], where.key("news"), defaults.get("news", {}))
    )
    extra = {k: table[k] for k in EXTRA if k in table}
    return Settings(preset, commit, branch, news, source, root, extra)


def section(settings: Settings, name: str) -> dict[str, Any]:
    """[tool.devkit.NAME] of one command (ci, lint, init), validated, over its preset's defaults."""
    where = s.Where(settings.source, f"tool.devkit.{name}")
    preset = PRESETS.get(settings.preset, {}).get(name, {})
    return s.validate(SECTIONS[name], settings.extra.get(name), where, preset)
