"""`[tool.devkit]` in pyproject.toml: found, parsed with tomllib, validated, merged over a preset."""

from __future__ import annotations

import os
import re

from devkit.conventions.settings import (
    PRESETS,
    SCHEMA,
    BranchSettings,
    CommitSettings,
    NewsSettings,
    Settings,
)
from devkit.errors import ConfigError
from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

# sections other commands own and validate themselves
PASSTHROUGH = ("hosts", "provision", "ci", "lint", "init", "sandbox")
TOP_KEYS = ("preset", *SCHEMA, *PASSTHROUGH)
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
    import marshal

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
    import tomllib

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


def coerce(kind: str, value: Any, source: str, key: str) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(
            source, key, f"expected {expected}, got {type(value).__name__} {value!r}"
        )

    if kind == "bool":
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise fail("a non-negative integer")
        return value
    if kind == "number":
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise fail("a positive number")
        return float(value)
    if kind == "table":
        if not isinstance(value, dict):
            raise fail("a table")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if kind.startswith("choice:"):
        choices = kind[7:].split("|")
        if value not in choices:
            raise ConfigError(
                source, key, f"expected one of {', '.join(map(repr, choices))}, got {value!r}"
            )
        return value
    if kind in ("strs", "pattern"):
        if kind == "pattern" and isinstance(value, str):
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(source, key, f"invalid regex {value!r}: {exc}") from None
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("a list of strings" + (" or a regex string" if kind == "pattern" else ""))
        return tuple(value)
    raise AssertionError(kind)


def build(table: dict[str, Any], source: str, root: str) -> Settings:
    for key in table:
        if key not in TOP_KEYS:
            from devkit.conventions.registry import did_you_mean

            guess = did_you_mean(key, TOP_KEYS)
            raise ConfigError(
                source,
                f"tool.devkit.{key}",
                "unknown key",
                f"Did you mean `{guess}`?" if guess else f"Known keys: {', '.join(TOP_KEYS)}.",
            )
    preset = table.get("preset", "conventional")
    if preset not in PRESETS:
        raise ConfigError(
            source,
            "tool.devkit.preset",
            f"unknown preset {preset!r}",
            f"Use one of: {', '.join(PRESETS)}.",
        )
    sections: dict[str, dict[str, Any]] = {}
    for section, schema in SCHEMA.items():
        merged = dict(PRESETS[preset].get(section, {}))
        user = table.get(section, {})
        if not isinstance(user, dict):
            raise ConfigError(source, f"tool.devkit.{section}", "must be a table")
        for key, value in user.items():
            path = f"tool.devkit.{section}.{key}"
            if key not in schema:
                from devkit.conventions.registry import did_you_mean

                guess = did_you_mean(key, list(schema))
                raise ConfigError(
                    source,
                    path,
                    "unknown key",
                    f"Did you mean `{guess}`?" if guess else f"Known keys: {', '.join(schema)}.",
                )
            merged[key] = coerce(schema[key], value, source, path)
        sections[section] = merged
    commit = CommitSettings(**sections["commit"])
    branch_data = sections["branch"]
    if "types" not in branch_data and isinstance(commit.types, tuple):
        branch_data["types"] = commit.types
    for p in branch_data.get("patterns", ()):
        try:
            re.compile(p.replace("{types}", "x"))
        except re.error as exc:
            raise ConfigError(
                source, "tool.devkit.branch.patterns", f"invalid regex {p!r}: {exc}"
            ) from None
    extra = {k: table[k] for k in PASSTHROUGH if k in table}
    return Settings(
        preset,
        commit,
        BranchSettings(**branch_data),
        NewsSettings(**sections["news"]),
        source,
        root,
        extra,
    )
