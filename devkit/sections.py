"""The `[tool.devkit.<section>]` tables that commands own (ci, lint, init, provision, hosts):
validated against a schema."""

from __future__ import annotations

from typing import Any

from devkit.conventions.settings import Settings
from devkit.errors import ConfigError


def read(
    settings: Settings, section: str, schema: dict[str, str], defaults: dict[str, Any]
) -> dict[str, Any]:
    """The section merged over defaults; an unknown key or a wrong type is a ConfigError naming it."""
    table = settings.extra.get(section)
    return read_table(table, settings.source, f"tool.devkit.{section}", schema, defaults)


def read_table(
    table: Any, source: str, path: str, schema: dict[str, str], defaults: dict[str, Any]
) -> dict[str, Any]:
    """A raw TOML table (None: absent) checked against schema (kinds as config.coerce) over defaults."""
    from devkit.config import coerce
    from devkit.conventions.registry import did_you_mean

    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigError(source, path, "must be a table")
    out = dict(defaults)
    for key, value in table.items():
        if key not in schema:
            guess = did_you_mean(key, list(schema))
            raise ConfigError(
                source,
                f"{path}.{key}",
                "unknown key",
                f"Did you mean `{guess}`?" if guess else f"Known keys: {', '.join(schema)}.",
            )
        out[key] = coerce(schema[key], value, source, f"{path}.{key}")
    return out
