"""Options and glue shared by the check commands (standard library only: this is on the hook path)."""

from __future__ import annotations

import os
import sys

from devkit import config, output
from devkit.conventions.settings import Settings
from devkit.record import TYPE_CHECKING
from devkit.violations import Report

if TYPE_CHECKING:
    import argparse


def format_default() -> str:
    default = os.environ.get("DEVKIT_FORMAT", "text")
    return default if default in output.FORMATS else "text"


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=output.FORMATS,
        default=format_default(),
        help="text for people (default), json for machines, github for workflow annotations",
    )


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PYPROJECT",
        help="the pyproject.toml to read [tool.devkit] from "
        "(default: the nearest one up to the repository root)",
    )


def settings(args: argparse.Namespace, start: str | os.PathLike[str] | None = None) -> Settings:
    return config.load(start, getattr(args, "config", None))


def finish(reports: list[Report], fmt: str) -> int:
    output.render(reports, fmt, sys.stdout)
    return output.exit_code(reports)
