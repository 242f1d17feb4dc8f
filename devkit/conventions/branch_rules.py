"""Branch-name rules."""

from __future__ import annotations

import re

from devkit.conventions.settings import MATCH_LIMIT, BranchSettings
from devkit.conventions.verdict import did_you_mean, violation
from devkit.violations import Location, Violation

_TICKET = r"[A-Z][A-Z0-9]+-\d+"
_REGEX_CHARS = frozenset("\\.^$*+?{}[]()|")


def compile_patterns(settings: BranchSettings) -> list[re.Pattern[str]]:
    types = "|".join(re.escape(t) for t in settings.types) or r"[a-z0-9]+"
    return [re.compile(p.replace("{types}", types)) for p in settings.patterns]


def _fullmatch(pattern: re.Pattern[str], name: str) -> bool:
    """A project's pattern over a branch name; a name longer than MATCH_LIMIT never matches."""
    return len(name) <= MATCH_LIMIT and pattern.fullmatch(name) is not None


def is_exempt(name: str, settings: BranchSettings) -> bool:
    # a plain name (`main`) is compared, not compiled: a hook run pays only for real patterns
    return any(
        p == name if _REGEX_CHARS.isdisjoint(p) else _fullmatch(re.compile(p), name)
        for p in settings.exempt
    )


def _slug(text: str) -> str:
    """Lower-case kebab slug that keeps ticket keys (BA-123) as they are."""
    tickets = re.findall(_TICKET, text)
    out = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
    for t in tickets:
        out = out.replace(t.lower(), t, 1)
    return out


def suggest(name: str, settings: BranchSettings) -> str:
    """A rename that matches a pattern, e.g. `Feature_Login` -> `feat/login`; "" when none is found.
    A suggestion always passes the rule it is the hint of (and is never the name itself)."""
    types = settings.types
    head, sep, rest = name.partition("/")
    if not sep:
        m = re.match(r"([A-Za-z]+)[-_](.+)", name)
        head, rest = (m[1], m[2]) if m and did_you_mean(m[1], types) else ("", name)
    guess = did_you_mean(head, types) if head else ""
    if not guess:
        guess = "feat" if "feat" in types or not types else types[0]
        rest = rest if sep else name
    patterns = compile_patterns(settings)
    slug = _slug(rest) or "change"
    for candidate in (f"{guess}/{slug}", f"{guess}/{slug.lower()}"):
        valid = any(_fullmatch(p, candidate) for p in patterns)
        valid = valid and not ref_format_problem(candidate)
        if candidate != name and valid:
            return candidate
    return ""


_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f") | frozenset(chr(c) for c in range(32))


def ref_format_problem(name: str) -> str:
    """Why git refuses name as a branch (git-check-ref-format(1) with --branch), or "" when it
    accepts it."""
    if not name or name == "@":
        return "is not a branch name"
    if name.startswith("-"):
        return "starts with `-`"
    bad = sorted({c for c in name if c in _REF_FORBIDDEN})
    if bad:
        shown = ", ".join(
            repr(c) if c.isspace() or ord(c) < 32 or c == "\x7f" else f"`{c}`" for c in bad
        )
        return f"contains {shown}"
    if ".." in name:
        return "contains `..`"
    if "@{" in name:
        return "contains `@{`"
    if name.endswith((".", "/")) or name.startswith("/"):
        return f"{'starts' if name.startswith('/') else 'ends'} with `{name[0] if name.startswith('/') else name[-1]}`"
    for part in name.split("/"):
        if not part:
            return "contains `//`"
        if part.startswith("."):
            return f"has a part that starts with `.` (`{part}`)"
        if part.endswith(".lock"):
            return f"has a part that ends in `.lock` (`{part}`)"
    return ""


def ref_format_violation(name: str) -> list[Violation]:
    """BR003 when git refuses name as a branch, else nothing."""
    problem = ref_format_problem(name)
    if not problem:
        return []
    return [
        violation(
            "BR003",
            f"branch `{name}` {problem}: git does not accept it as a branch name",
            Location(),
            "Rename it with letters, digits, `-`, `_`, `.` and `/` only, e.g. `feat/a-b`.",
            context=name,
        )
    ]


def check_branch(name: str, settings: BranchSettings) -> list[Violation]:
    loc = Location()
    patterns = compile_patterns(settings)
    if any(_fullmatch(p, name) for p in patterns):
        # the form is right; git may still refuse the name (`feat/a..b`, `fix/x.lock`)
        return ref_format_violation(name)
    forms = " or ".join(f"`{f}`" for f in settings.forms) or " or ".join(
        f"`{p}`" for p in settings.patterns
    )
    head, sep, _ = name.partition("/")
    new = suggest(name, settings) if len(name) <= MATCH_LIMIT else ""
    if sep and settings.types and head not in settings.types:
        guess = did_you_mean(head, settings.types)
        hint = (
            f"Did you mean `{guess}/`? Rename with `git branch -m {new}`."
            if guess and new
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
    return [
        violation(
            "BR001",
            f"branch `{name}` does not match {forms}",
            loc,
            f"Rename it, e.g. `git branch -m {new}`." if new else f"Rename it to {forms}.",
            context=name,
        )
    ]
