"""Provisioning's kind-string tables (`{"stack": "str", ...}`) read through devkit.schema.

An adapter kept only until devkit.provision describes its tables with devkit.schema directly;
new code declares a `schema.Table` instead.
"""

from __future__ import annotations

from typing import Any

from devkit import schema as s


def _any_table(value: Any, where: s.Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.fail(f"expected a table, got {type(value).__name__} {value!r}")
    return value


KINDS = {
    "bool": s.boolean(),
    "int": s.integer(),
    "number": s.number(),
    "str": s.string(),
    "strs": s.strings(),
    "pattern": s.strings_or_regex(),
    "table": _any_table,
}


def read_table(
    table: Any, source: str, path: str, schema: dict[str, str], defaults: dict[str, Any]
) -> dict[str, Any]:
    """A raw TOML table (None: absent) checked against {key: kind} over defaults."""
    keys = s.Table(*(s.Key(name, KINDS[kind], None) for name, kind in schema.items()))
    out = s.validate(keys, table, s.Where(source, path), defaults)
    present = {*defaults, *(table or {})}
    return {k: v for k, v in out.items() if k in present}
