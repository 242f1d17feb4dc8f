"""Violations as the rules make them: the rule's name from the registry, and the project's severity.

The registry (every rule's text) is loaded on the first violation: a clean hook run never needs it.
"""

from __future__ import annotations

from devkit.violations import ERROR, Location, Violation

NOWHERE = Location()


def violation(
    code: str,
    message: str,
    location: Location = NOWHERE,
    hint: str = "",
    severity: str = ERROR,
    context: str = "",
) -> Violation:
    from devkit.conventions.registry import BY_CODE  # only when something is wrong

    return Violation(code, BY_CODE[code].name, message, location, hint, severity, context)


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """devkit.conventions.suggest's, loaded only for a hint (a clean hook run needs none)."""
    from devkit.conventions.suggest import did_you_mean as suggest

    return suggest(word, choices)


def with_severities(
    violations: list[Violation] | tuple[Violation, ...], rules: dict[str, str]
) -> tuple[Violation, ...]:
    """The project's severity per rule ([tool.devkit.rules] over its preset): "off" drops a rule."""
    if not rules:
        return tuple(violations)
    out = []
    for v in violations:
        severity = rules.get(v.code, v.severity)
        if severity != "off":
            out.append(v if severity == v.severity else v._replace(severity=severity))
    return tuple(out)
