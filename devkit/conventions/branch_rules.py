"""Branch-name rules."""

from __future__ import annotations

import re

from devkit.conventions.registry import violation
from devkit.conventions.settings import BranchSettings
from devkit.conventions.suggest import did_you_mean
from devkit.violations import Location, Violation

_TICKET_RE = re.compile(r"[A-Z][A-Z0-9]+-\d+")


def compile_patterns(settings: BranchSettings) -> list[re.Pattern[str]]:
    types = "|".join(re.escape(t) for t in settings.types) or r"[a-z0-9]+"
    return [re.compile(p.replace("{types}", types)) for p in settings.patterns]


def is_exempt(name: str, settings: BranchSettings) -> bool:
    return any(re.fullmatch(p, name) for p in settings.exempt)


def _slug(text: str) -> str:
    """Lower-case kebab slug that keeps ticket keys (BA-123) as they are."""
    tickets = _TICKET_RE.findall(text)
    out = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
    for t in tickets:
        out = out.replace(t.lower(), t, 1)
    return out


def suggest(name: str, settings: BranchSettings) -> str:
    """A rename that matches the first form, e.g. `Feature_Login` -> `feat/login`."""
    types = settings.types
    head, sep, rest = name.partition("/")
    if not sep:
        m = re.match(r"([A-Za-z]+)[-_](.+)", name)
        head, rest = (m[1], m[2]) if m and did_you_mean(m[1], types) else ("", name)
    guess = did_you_mean(head, types) if head else ""
    if not guess:
        guess = "feat" if "feat" in types or not types else types[0]
        rest = rest if sep else name
    return f"{guess}/{_slug(rest) or 'change'}"


def check_branch(name: str, settings: BranchSettings) -> list[Violation]:
    loc = Location()
    patterns = compile_patterns(settings)
    if any(p.fullmatch(name) for p in patterns):
        return []
    forms = " or ".join(f"`{f}`" for f in settings.forms) or " or ".join(
        f"`{p}`" for p in settings.patterns
    )
    head, sep, _ = name.partition("/")
    if sep and settings.types and head not in settings.types:
        guess = did_you_mean(head, settings.types)
        hint = (
            f"Did you mean `{guess}/`? Rename with `git branch -m {suggest(name, settings)}`."
            if guess
            else f"Use one of: {', '.join(settings.types)}."
        )
        return [
            violation(
                "BR002",
                f"branch `{name}`: `{head}` is not an allowed type; expected {forms}",
                loc,
                hint,
                context=name,
            )
        ]
    new = suggest(name, settings)
    return [
        violation(
            "BR001",
            f"branch `{name}` does not match {forms}",
            loc,
            f"Rename it, e.g. `git branch -m {new}`.",
            context=name,
        )
    ]
