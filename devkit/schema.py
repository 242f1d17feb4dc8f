"""One declarative schema for devkit's TOML tables (`[tool.devkit.*]`, and stack files), in the spirit
of pre-commit's clientlib / cfgv: keys with checks and defaults, nested tables, lists of tables,
unknown keys refused with a did-you-mean, every error naming the file and the key path.

API
---
A `Table` is a tuple of `Key`s. A `Key(name, check, default=REQUIRED, doc="")` names one key; its
*check* is any function `(value, where) -> value` that returns the value to keep (converted: lists
become tuples) or raises through `where.fail(message, hint)`. `validate(table, data, where,
defaults=None)` returns a dict with every key of the table: the checked values of `data`, else
`defaults[name]` (e.g. a preset's), else the key's own default; a missing REQUIRED key, a key the
table does not know (with a did-you-mean hint) or a failed check is a `ConfigError` that reads
`FILE: a.b[2].c: message`.

Checks (each call returns a check):

    boolean()                     true / false
    integer(min=0, max=None)      an int (bools refused) in range
    number(positive=True)         an int or float, returned as float
    string(pattern=None)          a str, optionally re.fullmatch-ed against pattern
    choice(*options)              one of the options
    regex()                       a str that compiles as a regular expression (no exponential backtracking)
    strings(item=None)            a list of str -> tuple; item checks each (errors name the list)
    strings_or_regex()            a list of str (tuple) or a regex string (str)
    list_of(check)                a list -> tuple, each item checked at `key[i]` (lists of tables)
    table(Table, open=False)      a nested table -> dict (validate); open passes unknown keys on
    mapping(check, key=None)      a table of any names, each value checked at `key.NAME` ([hosts.*])
    anything()                    any value (a section validated elsewhere)

Each check says what it accepts, for the reference docs (docs/_ext): `expects(check)` is one phrase
("a list of strings"), and `table()`, `list_of()` and `mapping()` keep what they hold (`check.keys`,
`check.item`). A check of one's own says it in its docstring's first line.

    from devkit import schema as s
    SERVICE = s.Table(s.Key("command", s.string()), s.Key("port", s.integer(min=1, max=65535), 0))
    STACK = s.Table(
        s.Key("name", s.string()),
        s.Key("services", s.mapping(s.table(SERVICE)), {}),
        s.Key("dirs", s.list_of(s.table(s.Table(s.Key("path", s.string())))), ()),
    )
    spec = s.validate(STACK, tomllib.load(fh), s.Where("stack.toml"))

Light on purpose: the hook paths validate `[tool.devkit]` on every run, so this imports only `re`.
"""

from __future__ import annotations

import re

from devkit.conventions.suggest import did_you_mean
from devkit.errors import ConfigError
from devkit.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Check = Callable[[Any, "Where"], Any]

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()


class Where(Record):
    """Where a value sits: the file and the dotted key path inside it."""

    source: str = ""
    path: str = ""

    def key(self, name: str) -> Where:
        return Where(self.source, f"{self.path}.{name}" if self.path else name)

    def index(self, i: int) -> Where:
        return Where(self.source, f"{self.path}[{i}]")

    def fail(self, message: str, hint: str = "") -> ConfigError:
        return ConfigError(self.source, self.path, message, hint)


class Key(Record):
    name: str
    check: Check
    default: Any = REQUIRED
    doc: str = ""


class Table(tuple):  # type: ignore[type-arg]
    """The keys of one table, in order (a tuple of Key)."""

    def __new__(cls, *keys: Key) -> Table:
        return super().__new__(cls, keys)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self)


def _says(check: Check, expects: str, **parts: Any) -> Check:
    """`check`, with what it accepts written on it (for the reference docs; nothing reads it here)."""
    check.expects = expects  # type: ignore[attr-defined]
    for name, value in parts.items():
        setattr(check, name, value)
    return check


def expects(check: Check) -> str:
    """What a check accepts, in words: its own, else its docstring's first line."""
    said = getattr(check, "expects", "") or (check.__doc__ or "").strip().split("\n")[0]
    return str(said).rstrip(".") or "any value"


def _got(value: Any) -> str:
    return f"got {type(value).__name__} {value!r}"


def unknown_key(where: Where, name: str, known: tuple[str, ...]) -> ConfigError:
    guess = did_you_mean(name, known)
    hint = f"Did you mean `{guess}`?" if guess else f"Known keys: {', '.join(known)}."
    return where.key(name).fail("unknown key", hint)


def validate(
    table: Table,
    data: Any,
    where: Where,
    defaults: dict[str, Any] | None = None,
    *,
    open: bool = False,
) -> dict[str, Any]:
    """`data` (a TOML table, None when absent) checked against `table`, every key filled in."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise where.fail("must be a table")
    names = table.names
    if not open:
        for name in data:
            if name not in names:
                raise unknown_key(where, name, names)
    out: dict[str, Any] = {k: v for k, v in data.items() if k not in names} if open else {}
    for key in table:
        if key.name in data:
            out[key.name] = key.check(data[key.name], where.key(key.name))
        elif defaults is not None and key.name in defaults:
            out[key.name] = defaults[key.name]
        elif key.default is REQUIRED:
            raise where.key(key.name).fail("missing", f"Add `{key.name} = ...`.")
        else:
            out[key.name] = key.default
    return out


# --- checks -----------------------------------------------------------------------------------


def boolean() -> Check:
    def check(value: Any, where: Where) -> bool:
        if not isinstance(value, bool):
            raise where.fail(f"expected true or false, {_got(value)}")
        return value

    return _says(check, "true or false")


def integer(min: int | None = 0, max: int | None = None) -> Check:
    if min == 0 and max is None:
        expected = "a non-negative integer"
    elif max is None:
        expected = f"an integer >= {min}"
    else:
        expected = f"an integer from {min} to {max}"

    def check(value: Any, where: Where) -> int:
        bad = not isinstance(value, int) or isinstance(value, bool)
        if bad or (min is not None and value < min) or (max is not None and value > max):
            raise where.fail(f"expected {expected}, {_got(value)}")
        return value  # type: ignore[no-any-return]

    return _says(check, expected)


def number(positive: bool = True) -> Check:
    def check(value: Any, where: Where) -> float:
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or value != value  # nan (TOML has it)
            or value in (float("inf"), float("-inf"))
            or (positive and value <= 0)
        ):
            raise where.fail(
                f"expected a finite {'positive ' if positive else ''}number, {_got(value)}"
            )
        return float(value)

    return _says(check, "a positive number" if positive else "a number")


def string(pattern: str | None = None, expected: str = "") -> Check:
    def check(value: Any, where: Where) -> str:
        if not isinstance(value, str):
            raise where.fail(f"expected a string, {_got(value)}")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise where.fail(
                f"expected {expected or f'a string matching `{pattern}`'}, got {value!r}"
            )
        return value

    return _says(check, expected or (f"a string matching `{pattern}`" if pattern else "a string"))


def choice(*options: str) -> Check:
    def check(value: Any, where: Where) -> str:
        if value not in options:
            guess = did_you_mean(value, options) if isinstance(value, str) else ""
            raise where.fail(
                f"expected one of {', '.join(map(repr, options))}, got {value!r}",
                f"Did you mean {guess!r}?" if guess else "",
            )
        return value  # type: ignore[no-any-return]

    return _says(check, "one of " + ", ".join(f'"{o}"' for o in options))


def _compile(value: str, where: Where) -> None:
    """value compiles, and cannot backtrack exponentially (re has no time limit)."""
    try:
        re.compile(value)
    except re.error as exc:
        raise where.fail(f"invalid regex {value!r}: {exc}") from None
    from devkit.redos import backtracking_risk  # only when a config is validated

    risk = backtracking_risk(value)
    if risk:
        raise where.fail(
            f"the regex {value!r} can take exponential time on a near miss: {risk}",
            "Give each round of a repeat a character that ends it, "
            "e.g. `[a-z0-9]+(-[a-z0-9]+)*` rather than `([a-z0-9]+-?)+`.",
        )


def regex() -> Check:
    def check(value: Any, where: Where) -> str:
        if not isinstance(value, str):
            raise where.fail(f"expected a regex string, {_got(value)}")
        _compile(value, where)
        return value

    return _says(check, "a regular expression")


def strings(item: Check | None = None, expected: str = "a list of strings") -> Check:
    def check(value: Any, where: Where) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise where.fail(f"expected {expected}, {_got(value)}")
        if item is not None:
            return tuple(item(v, where) for v in value)
        return tuple(value)

    return _says(check, expected, item=item)


def strings_or_regex() -> Check:
    as_list = strings(expected="a list of strings or a regex string")

    def check(value: Any, where: Where) -> tuple[str, ...] | str:
        if isinstance(value, str):
            _compile(value, where)
            return value
        return as_list(value, where)  # type: ignore[no-any-return]

    return _says(check, "a list of strings, or a regular expression")


def list_of(item: Check) -> Check:
    def check(value: Any, where: Where) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise where.fail(f"expected a list, {_got(value)}")
        return tuple(item(v, where.index(i)) for i, v in enumerate(value))

    return _says(check, "a list", item=item)


def table(keys: Table, open: bool = False) -> Check:
    def check(value: Any, where: Where) -> dict[str, Any]:
        return validate(keys, value, where, open=open)

    return _says(check, "a table", keys=keys)


def mapping(item: Check, key: Check | None = None) -> Check:
    def check(value: Any, where: Where) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise where.fail("must be a table")
        out = {}
        for name, v in value.items():
            if key is not None:
                key(name, where.key(name))
            out[name] = item(v, where.key(name))
        return out

    return _says(check, "a table of names", item=item, key=key)


def moved(to: str) -> Check:
    """A key that moved elsewhere: setting it is an error that says where it lives now."""

    def check(value: Any, where: Where) -> Any:
        raise where.fail(f"this key moved: it is {to} now", f"Set {to} instead.")

    check.expects = f"moved to {to}"  # type: ignore[attr-defined]
    return check


def anything() -> Check:
    return _says(lambda value, where: value, "any value")
