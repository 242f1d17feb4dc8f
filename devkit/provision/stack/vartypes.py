"""The declared types of a stack's variables (`[types]` in stack.toml), checked once every variable
is resolved and before any template is rendered: a port is a port, a path has no newline, an
identifier is safe inside any quoting, a secret is masked wherever it would show."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from devkit.errors import DevkitError


class BadValue(ValueError):
    pass


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadValue(f"expected text, got {type(value).__name__} {value!r}")
    text = str(value)
    if "\0" in text:
        raise BadValue("contains a NUL byte")
    return text


def _line(value: Any) -> str:
    text = _text(value)
    if "\n" in text or "\r" in text:
        raise BadValue(f"{text!r} spans more than one line")
    return text


def _int(value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise BadValue(f"expected a number, got {value!r}")
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        value = int(value)
    if not isinstance(value, int):
        raise BadValue(f"expected a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadValue(f"{value} is not between {low} and {high}")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadValue(f"expected true or false, got {value!r}")


def _pattern(regex: str, what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _line(value)
        if not re.fullmatch(regex, text):
            raise BadValue(f"{text!r} is not {what}")
        return text

    return check


# type name -> (check and convert, what it is)
TYPES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "port": (lambda v: _int(v, 1, 65535), "a TCP port (1-65535)"),
    "optional_port": (
        lambda v: "" if v == "" else _int(v, 1, 65535),
        "a TCP port (1-65535), or empty where the host's configuration does not use it",
    ),
    "int": (_int, "an integer"),
    "bool": (_bool, "true or false"),
    "path": (_line, "a path (one line)"),
    "identifier": (
        _pattern(r"[A-Za-z_][A-Za-z0-9_]{0,62}", "a plain identifier (letters, digits, _)"),
        "a plain identifier (letters, digits, _; at most 63)",
    ),
    "name": (
        _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", "a name (letters, digits, . _ -)"),
        "a name (letters, digits, . _ -)",
    ),
    "username": (
        _pattern(r"[a-z_][a-z0-9_-]{0,31}\$?", "a user name"),
        "a user name",
    ),
    "string": (_text, "text"),
    "secret": (_text, "a secret (masked wherever it would show)"),
    "shell": (_text, "a shell snippet written by the stack's author (used as is)"),
}


class Typed(NamedTuple):
    values: dict[str, Any]  # the variables, converted (ports as int, bools as bool)
    secrets: dict[str, str]  # dotted name -> value, of every variable declared secret


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def inferred(value: Any) -> str:
    """The type of a variable with no declared one: its value's."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return "string"


def check(values: dict[str, Any], types: dict[str, str], source: str) -> Typed:
    """Every variable checked against its declared (or inferred) type; raises a DevkitError that
    names the variable, its value's problem and the type it must have."""
    out: dict[str, Any] = {}
    secrets: dict[str, str] = {}

    def walk(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for k, v in node.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                result[k] = walk(v, name + ".")
                continue
            kind = types.get(name) or inferred(v)
            convert, what = TYPES[kind]
            try:
                result[k] = convert(v)
            except BadValue as exc:
                raise DevkitError(
                    f"{source}: variable `{name}`: {exc}",
                    f"`{name}` must be {what} ([types] in the stack); fix the value given with "
                    "--set or [tool.devkit.hosts.NAME.vars].",
                ) from None
            if kind == "secret":
                secrets[name] = str(result[k])
        return result

    out = walk(values, "")
    return Typed(out, secrets)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, table by table (nested dicts merged, everything else replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
