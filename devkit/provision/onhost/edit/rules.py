"""Which changed paths mean what (pure): the `[edit]` group's path patterns, what a set of
changed files restarts, and what a file that does not compile keeps as it is."""

from __future__ import annotations

import re
from typing import Any


def glob_regex(pattern: str) -> str:
    """A path pattern as a regex: `**` crosses folders, `*` and `?` stay in one, and a pattern
    without either means that path and everything under it."""
    if not any(c in pattern for c in "*?"):
        return re.escape(pattern) + "(/.*)?"
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out += "(/.*)?"
            i += 3
        elif pattern.startswith("**/", i):
            out += "(.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out


def matcher(patterns: list[str]) -> Any:
    return (
        re.compile("^(?:" + "|".join(glob_regex(p) for p in patterns) + ")$") if patterns else None
    )


def roots(patterns: list[str]) -> list[str]:
    """The folders (or files) a set of patterns can match under: the part before the first glob."""
    out = set()
    for p in patterns:
        parts = p.split("/")
        fixed = []
        for part in parts:
            if any(c in part for c in "*?"):
                break
            fixed.append(part)
        out.add("/".join(fixed) or ".")
    if "." in out:
        return ["."]
    keep = [r for r in out if not any(r != o and r.startswith(o + "/") for o in out)]
    return sorted(keep)


def all_patterns(rules: dict[str, Any]) -> list[str]:
    pats = [p for ps in rules["services"].values() for p in ps]
    return pats + [p for n in rules["notes"] for p in n["paths"]]


def decide(
    files: dict[str, float],
    starts: dict[str, float],
    stops: dict[str, float],
    rules: dict[str, Any],
    looked: float = 0.0,
    imports: dict[str, set[str]] | None = None,
) -> dict[str, Any]:
    """What a set of files means (pure). files: path -> when it last changed; starts: service ->
    when its process started; stops: service -> when it was stopped on purpose (a service in
    neither does not run on this host); looked: when the last look was (notes are said once);
    imports: service -> the checkout files its running process imported (its record), which
    decide for Python files: one it imported restarts it, one it never imported does not,
    whatever the paths say; the paths decide the rest (and everything of a service with no
    record). Returns {"restart": {service: [files]}, "stopped": {service: [files changed since it
    stopped]}, "spared": {service: [Python files of its paths it never imported]}, "notes":
    [[note, files]]}."""
    restart: dict[str, list[str]] = {}
    stopped: dict[str, list[str]] = {}
    spared: dict[str, list[str]] = {}
    claimed = set()
    for name in rules["order"]:
        m = matcher(rules["services"].get(name, []))
        if m is None or (name not in starts and name not in stops):
            continue
        by_paths = [f for f in files if m.match(f)]
        claimed.update(by_paths)
        since = starts.get(name, stops.get(name, 0.0))
        seen = (imports or {}).get(name) if name in starts else None
        if seen is None:
            mine = by_paths
        else:
            mine = [f for f in files if f in seen or (m.match(f) and not _python(f))]
            not_imported = sorted(f for f in by_paths if _python(f) and f not in seen)
            if newer := [f for f in not_imported if files[f] > since]:
                spared[name] = newer
        newer = sorted(f for f in mine if files[f] > since)
        if newer:
            (restart if name in starts else stopped)[name] = newer
    # a change that restarts nothing but means something: since the last look, and since the
    # services started
    since_all = max(min(starts.values()) if starts else 0.0, looked)
    notes = []
    for n in rules["notes"]:
        m = matcher(n["paths"])
        hits = sorted(f for f in files if f not in claimed and files[f] > since_all and m.match(f))
        if hits:
            notes.append([n["note"], hits])
    return {"restart": restart, "stopped": stopped, "spared": spared, "notes": notes}


def _python(path: str) -> bool:
    return path.endswith(".py")


def blocked(restart: dict[str, list[str]], errors: dict[str, Any]) -> dict[str, list[str]]:
    """The services a file that does not compile keeps as they are: service -> its bad files."""
    return {
        s: [f for f in fs if f in errors]
        for s, fs in restart.items()
        if any(f in errors for f in fs)
    }
