"""devkit check news [--base REF] [--pr N]"""

from __future__ import annotations

import argparse

from devkit import git
from devkit.checks import pull
from devkit.checks.news import news_report
from devkit.commands._common import add_config, add_format, add_pr, finish, settings
from devkit.errors import DevkitError


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "--base",
        metavar="REF",
        help="the base branch: the branch must add a fragment (e.g. origin/main)",
    )
    add_pr(parser, "the pull request number every added fragment must carry")
    parser.add_argument(
        "--pushed",
        action="store_true",
        help="the pre-push hook's check: what `devkit ci` will check in this branch's pull "
        "request (its number, title and labels from `gh pr view`), and nothing before it exists",
    )
    add_format(parser)
    add_config(parser)


def run(args: argparse.Namespace) -> int:
    if args.pushed and args.pr is not None:
        raise DevkitError(
            "--pushed reads the pull request's number from `gh pr view`; --pr goes without it",
            "e.g. `devkit check news --base origin/main --pr 123`.",
        )
    if args.pr is not None and not args.base:
        raise DevkitError(
            "--pr needs --base: only the fragments the branch adds must carry the number",
            "e.g. `devkit check news --base origin/main --pr 123`.",
        )
    root = git.toplevel()
    cfg = settings(args, root)
    if args.pushed:
        return finish([pull.pushed(root, cfg, args.base)], args.format)
    # a fragment staged for the next commit counts: `devkit news new`, `git add`, then this check
    return finish([news_report(root, cfg, args.base, args.pr, staged=True)], args.format)
