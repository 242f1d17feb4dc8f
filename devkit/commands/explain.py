"""devkit explain [CODE|NAME]"""

from __future__ import annotations

import argparse
import json
import sys

from devkit.conventions.registry import RULES, Rule, lookup
from devkit.conventions.suggest import did_you_mean
from devkit.errors import DevkitError


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "rule", nargs="?", help="a rule code (CM003) or name (type-enum); none lists every rule"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def example(rule: Rule, text: str) -> str:
    """A rule's bad or good example as `devkit explain` and the rule reference show it."""
    if rule.kind == "news" and text:
        name, _, content = text.partition("\n")
        return f"{name}:\n    {content or '(empty)'}"
    return text or "(nothing)"


def text(rule: Rule) -> str:
    out = [f"{rule.code} {rule.name} ({rule.kind})", "", rule.summary, "", "Why: " + rule.why, ""]
    if rule.bad:
        out += ["Bad:", *("    " + line for line in example(rule, rule.bad).splitlines()), ""]
    out += ["Use instead:", *("    " + line for line in example(rule, rule.good).splitlines()), ""]
    if rule.options:
        out += ["Options ([tool.devkit] in pyproject.toml): " + ", ".join(rule.options), ""]
    return "\n".join(out)


# devkit's codes: CM, BR and NF, then three digits
DEVKIT_PREFIXES = ("CM", "BR", "NF")


def is_ruff_code(text: str) -> bool:
    """Whether text is shaped like a ruff rule code (`F401`, `E501`, `PLC0415`, `RUF012`) and not
    like devkit's own."""
    code = text.upper()
    letters = code.rstrip("0123456789")
    digits = code[len(letters) :]
    return (
        code.isascii()
        and letters.isalpha()
        and 1 <= len(letters) <= 5
        and 1 <= len(digits) <= 4
        and letters not in DEVKIT_PREFIXES
    )


def run(args: argparse.Namespace) -> int:
    if not args.rule:
        if args.format == "json":
            json.dump([r._asdict() for r in RULES], sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for r in RULES:
                sys.stdout.write(f"{r.code}  {r.name:<24} {r.summary}\n")
        return 0
    rule = lookup(args.rule)
    if rule is None and is_ruff_code(args.rule):
        raise DevkitError(
            f"`{args.rule}` is not one of devkit's rules: it is a ruff rule (`devkit lint` reports "
            "ruff's findings under ruff's own codes)",
            f"Run `ruff rule {args.rule.upper()}` for its explanation.",
        )
    if rule is None:
        guess = did_you_mean(args.rule, [r.code for r in RULES] + [r.name for r in RULES])
        raise DevkitError(
            f"no rule `{args.rule}`",
            f"Did you mean `{guess}`?" if guess else "Run `devkit explain` for the list.",
        )
    if args.format == "json":
        json.dump(rule._asdict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text(rule))
    return 0
