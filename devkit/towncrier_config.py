"""The one adapter over towncrier's (private) config loader; tests/test_towncrier_contract.py guards it.

towncrier documents only its CLI; `_settings` and `_builder` are imported here and nowhere else, and
the dependency is pinned to the range the contract test covers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from towncrier._builder import FragmentsPath
from towncrier._settings.load import load_config_from_options

from devkit import files
from devkit.conventions.fragment_rules import FragmentConfig
from devkit.errors import ConfigError, DevkitError


class NewsConfig(NamedTuple):
    base_directory: Path  # where the config lives
    fragments: FragmentConfig  # directory relative to the repository root
    fragment_dir: Path  # absolute
    config_file: str
    type_names: dict[str, str]  # type key -> display name, in config order
    name: str = ""  # [tool.towncrier] name
    package: str = ""  # [tool.towncrier] package (towncrier imports it for a name or version)
    version: str = ""  # [tool.towncrier] version


def load(root: Path) -> NewsConfig:
    """towncrier's config for the repository at root (towncrier.toml wins over pyproject.toml)."""
    config_file = next(
        (str(root / n) for n in ("towncrier.toml", "pyproject.toml") if (root / n).is_file()), ""
    )
    if not config_file:
        raise ConfigError(
            str(root),
            "",
            "no towncrier.toml or pyproject.toml here",
            "Add a [tool.towncrier] table (`devkit init` writes one).",
        )
    tool = files.read_toml(config_file).get("tool", {})
    if not isinstance(tool, dict) or "towncrier" not in tool:
        raise ConfigError(
            config_file,
            "tool.towncrier",
            "no [tool.towncrier] table: devkit takes the fragment types and directory from it",
            "Add one (`devkit init` writes it).",
        )
    try:
        base, config = load_config_from_options(str(root), config_file)
        fragment_dir = Path(FragmentsPath(base, config)(""))
    except Exception as exc:  # towncrier raises click's ClickException, KeyError, TypeError ...
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        option = getattr(exc, "failing_option", None)
        raise ConfigError(
            config_file,
            f"tool.towncrier.{option}" if option else "tool.towncrier",
            message.strip().splitlines()[0],
        ) from None
    if config.sections and set(config.sections) != {""}:
        raise ConfigError(
            config_file,
            "tool.towncrier.section",
            "towncrier sections are not supported by devkit yet; use one fragment directory",
        )
    try:
        rel = fragment_dir.resolve().relative_to(root.resolve())
    except ValueError:
        raise ConfigError(
            config_file,
            "tool.towncrier.directory",
            f"the fragment directory {fragment_dir} is outside the repository",
        ) from None
    suffix = os.path.splitext(config.filename)[1].lstrip(".")
    ignore = list(config.ignore or [])
    template = config.template
    if isinstance(template, str) and not template.startswith(("towncrier:", "towncrier.templates")):
        ignore.append(os.path.basename(template))
    types = tuple(config.types)
    for name in types:
        problem = type_name_problem(name)
        if problem:
            raise ConfigError(
                config_file,
                "tool.towncrier.type",
                f"the fragment type {name!r} {problem}: fragment file names are "
                "`<number>.<type>.<ext>`",
                "Name the type with letters, digits, `-` and `_` (e.g. `fix`).",
            )
    fc = FragmentConfig(
        directory=rel.as_posix(),
        types=types,
        extension=suffix if config.create_add_extension else "",
        ignore=tuple(ignore),
        orphan_prefix=config.orphan_prefix,
    )
    names = {k: str(v.get("name", k)) for k, v in config.types.items()}
    return NewsConfig(
        Path(base),
        fc,
        fragment_dir,
        config_file,
        names,
        config.name or "",
        config.package or "",
        config.version or "",
    )


def type_name_problem(name: str) -> str:
    """Why a towncrier type cannot be part of a fragment's file name ("" when it can): devkit writes
    `<dir>/<number>.<type>.<ext>`, so `/` would leave the directory and `.` splits the name."""
    if not name:
        return "is empty"
    bad = sorted({ch for ch in name if ch in "/\\." or not ch.isprintable() or ch.isspace()})
    return f"contains {', '.join(repr(ch) for ch in bad)}" if bad else ""


def fragment_dir_exists(news: NewsConfig) -> bool:
    """Whether the fragment directory exists (a link to a folder counts); anything else in its
    place is an error, never "missing"."""
    path = news.fragment_dir
    if path.is_dir():
        return True
    if not os.path.lexists(path):
        return False
    raise DevkitError(
        f"the fragment directory {news.fragments.directory}/ is not a folder",
        f"Remove or rename the file `{news.fragments.directory}`, or point "
        "[tool.towncrier] directory at a folder.",
    )
