"""devkit check news [--base REF] [--pr N]"""

from __future__ import annotations

import argparse

from devkit import git
from devkit.checks.news import news_report
from devkit.commands._common import add_config, add_format, finish, settings
from devkit.errors import DevkitError


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "--base",
        metavar="REF",
        help="the base branch: the branch must add a fragment (e.g. origin/main)",
    )
    parser.add_argument(
        "--pr",
        type=int,
        metavar="N",
        help="the pull request number every added fragment must carry",
    )
    add_format(parser)
    add_config(parser)


def run(args: argparse.Namespace) -> int:
    if args.pr is not None and not args.base:
        raise DevkitError(
            "--pr needs --base: only the fragments the branch adds must carry the number",
            "e.g. `devkit check news --base origin/main --pr 123`.",
        )
    root = git.toplevel()
    cfg = settings(args, root)
    return finish([news_report(root, cfg, args.base, args.pr)], args.format)
