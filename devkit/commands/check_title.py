"""devkit check title TEXT [--pr N]"""

from __future__ import annotations

import argparse

from devkit.checks.title import title_report
from devkit.commands._common import add_config, add_format, add_pr, finish, settings


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument("title", help="the pull request title")
    add_pr(parser, "the pull request number (a preset that squash-merges checks `TITLE (#N)`)")
    add_format(parser)
    add_config(parser)


def run(args: argparse.Namespace) -> int:
    return finish([title_report(args.title, args.pr, settings(args))], args.format)
