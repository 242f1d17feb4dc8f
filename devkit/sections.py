"""The `[tool.devkit.<section>]` tables that commands own (ci, lint, init): validated against a schema."""

from __future__ import annotations

from typing import Any

from devkit.conventions.settings import Settings
from devkit.errors import ConfigError


def read(
    settings: Settings, section: str, schema: dict[str, str], defaults: dict[str, Any]
) -> dict[str, Any]:
    """The section merged over defaults; an unknown key or a wrong type is a ConfigError naming it."""
    from devkit.config import coerce
    from devkit.conventions.registry import did_you_mean

    table = settings.extra.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(settings.source, f"tool.devkit.{section}", "must be a table")
    out = dict(defaults)
    for key, value in table.items():
        path = f"tool.devkit.{section}.{key}"
        if key not in schema:
            guess = did_you_mean(key, list(schema))
            raise ConfigError(
                settings.source,
                path,
                "unknown key",
                f"Did you mean `{guess}`?" if guess else f"Known keys: {', '.join(schema)}.",
            )
        out[key] = coerce(schema[key], value, settings.source, path)
    return out
