"""devkit ci: every check a pull request must pass, in one report (each check runs on its own)."""

from __future__ import annotations

import argparse

from devkit import config, git
from devkit.checks import pull
from devkit.checks.pull import CHECKS
from devkit.commands._common import add_config, add_format, finish, settings


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "--base",
        metavar="REF",
        help="the base of the pull request (default: "
        "origin/$GITHUB_BASE_REF, [tool.devkit.ci].base, else origin's default branch)",
    )
    parser.add_argument(
        "--head",
        metavar="REF",
        help="the pull request's tip (default: the event's head sha when present, else HEAD)",
    )
    parser.add_argument(
        "--pr",
        type=int,
        metavar="N",
        help="the pull request number (default: from GITHUB_EVENT_PATH)",
    )
    parser.add_argument("--title", help="the pull request title (default: from GITHUB_EVENT_PATH)")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="LABEL",
        dest="labels",
        help="a label of the pull request (repeatable; added to the event's)",
    )
    parser.add_argument(
        "--branch",
        metavar="NAME",
        help="the branch name (default: GITHUB_HEAD_REF, else the current branch)",
    )
    parser.add_argument(
        "--deepen",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fetch the base and deepen a shallow clone when the range is incomplete "
        "(default: [tool.devkit.ci].deepen, else on in GitHub Actions)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=CHECKS,
        metavar="CHECK",
        help=f"do not run a check (repeatable): {', '.join(CHECKS)}",
    )
    add_format(parser)
    add_config(parser)


def run(args: argparse.Namespace) -> int:
    root = git.toplevel()
    cfg = settings(args, root)
    opts = config.section(cfg, "ci")
    found = pull.resolve(
        root,
        opts,
        base=args.base,
        head=args.head,
        number=args.pr,
        title=args.title,
        labels=tuple(args.labels),
        branch=args.branch,
        deepen=args.deepen,
    )
    return finish(pull.run_checks(root, cfg, opts, found, set(args.skip)), args.format)
