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


def pr_number(text: str) -> int:
    """argparse's type for a pull request number: a positive integer."""
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        import argparse  # only for this error

        raise argparse.ArgumentTypeError(
            f"{text!r} is not a pull request number (a positive integer)"
        )
    return int(text)


def add_pr(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--pr", type=pr_number, metavar="N", help=help)


def settings(args: argparse.Namespace, start: str | os.PathLike[str] | None = None) -> Settings:
    return config.load(start, getattr(args, "config", None))


def finish(reports: list[Report], fmt: str) -> int:
    """Print the reports; the exit code is theirs even when the reader went away early
    (`devkit check commit --range A..B | head -1` still fails on a violation)."""
    code = output.exit_code(reports)
    try:
        output.render(reports, fmt, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # and silence the flush at exit
    if code == 0 and any(r.warnings for r in reports):
        warn_on_terminal(reports)
    return code


def warn_on_terminal(reports: list[Report]) -> None:
    """A passing git hook's warnings, on the terminal: pre-commit keeps a hook's output to itself
    unless the hook fails (or runs with --verbose), so under pre-commit they go to /dev/tty too.
    Without a terminal (CI, an IDE's commit) there is nobody to tell, and nothing is written."""
    if os.environ.get("PRE_COMMIT") != "1" or sys.stdout.isatty():
        return
    try:
        with open("/dev/tty", "w", encoding="utf-8", errors="replace") as tty:
            output.render_text(reports, tty)
    except OSError:  # no controlling terminal
        pass
