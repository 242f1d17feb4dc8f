"""devkit check branch [NAME]"""

from __future__ import annotations

import os

from devkit import output
from devkit.commands._common import add_config, add_format, finish, format_default, settings
from devkit.conventions.branch_rules import check_branch, is_exempt
from devkit.record import TYPE_CHECKING
from devkit.violations import Report

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


def resolve_name(explicit: str | None) -> tuple[str | None, str]:
    """(name, where it came from); name is None on a detached HEAD outside CI."""
    if explicit:
        return explicit, "argument"
    from devkit import git

    branch = git.current_branch()
    if branch is not None:
        return branch, "current branch"
    head_ref = os.environ.get("GITHUB_HEAD_REF")
    if head_ref:
        return head_ref, "GITHUB_HEAD_REF"
    return None, "detached HEAD"


def branch_report(name: str | None, cfg) -> Report:  # type: ignore[no-untyped-def]
    if name is None:
        return Report(
            "branch",
            (),
            0,
            ("HEAD is detached; no branch to check (pass a name or set GITHUB_HEAD_REF)",),
        )
    name = name.removeprefix("refs/heads/")
    if is_exempt(name, cfg.branch):
        return Report("branch", (), 1, (f"`{name}` is exempt from the naming rules",))
    return Report("branch", tuple(check_branch(name, cfg.branch)), 1)


def run(args: argparse.Namespace) -> int:
    cfg = settings(args)
    name, _ = resolve_name(args.name or args.name_opt)
    return finish([branch_report(name, cfg)], args.format)
