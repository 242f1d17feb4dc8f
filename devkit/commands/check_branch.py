"""devkit check branch [NAME]"""

from __future__ import annotations

from devkit import output
from devkit.checks.branch import branch_report, resolve_name
from devkit.commands._common import add_config, add_format, finish, format_default, settings
from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

FAST_OPTIONS = {
    "positional": "name",
    "options": {"--name": "name_opt", "--format": "format", "--config": "config"},
    "choices": {"format": output.FORMATS},
    "defaults": lambda: {
        "name": None,
        "name_opt": None,
        "format": format_default(),
        "config": None,
    },
}


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "name",
        nargs="?",
        help="the branch name (default: the current branch, or "
        "GITHUB_HEAD_REF on a detached HEAD in CI)",
    )
    parser.add_argument("--name", dest="name_opt", metavar="NAME", help="same as NAME")
    add_format(parser)
    add_config(parser)


def run(args: argparse.Namespace) -> int:
    cfg = settings(args)
    name, _ = resolve_name(args.name or args.name_opt)
    return finish([branch_report(name, cfg)], args.format)
