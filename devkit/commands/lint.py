"""devkit lint [--fix] [--all | --base REF | --staged] [PATHS...]"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from devkit import config, git, history, ruff
from devkit.checks import lint
from devkit.commands._common import add_config, add_format, finish, settings
from devkit.errors import DevkitError


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="lint these files or directories (default: the Python files changed against the base)",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="apply ruff's safe fixes and format, then report what is left",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--all", action="store_true", help="lint every file ruff would (its own config)"
    )
    scope.add_argument(
        "--base",
        metavar="REF",
        help="lint what changed since the merge base with REF "
        "(default: [tool.devkit.lint].base, else origin's default branch)",
    )
    scope.add_argument(
        "--staged",
        action="store_true",
        help="lint the staged files (the default inside a pre-commit hook)",
    )
    parser.add_argument(
        "--sync-pre-commit",
        action="store_true",
        help="set the ruff-pre-commit rev in .pre-commit-config.yaml to the ruff the project pins "
        "(what `devkit doctor` asks for when they drift), lint nothing",
    )
    add_format(parser)
    add_config(parser)


STAGED = "staged files"


def targets(
    args: argparse.Namespace, root: Path, base_default: str | None
) -> tuple[list[str], str]:
    """(repository-relative paths, a note saying where they came from)."""
    if args.paths:
        cwd = Path.cwd()
        out = []
        for p in args.paths:
            full = (cwd / p).resolve()
            if not full.exists():
                raise DevkitError(f"no such file or directory: {p}")
            rel = os.path.relpath(full, root)
            if rel.startswith(".."):
                raise DevkitError(f"{p} is outside the repository {root}")
            out.append(rel)
        dirs = [p for p in out if (root / p).is_dir()]
        return dirs + lint.python_files([p for p in out if p not in dirs], root), "the given paths"
    if args.staged or (os.environ.get("PRE_COMMIT") and not args.base):
        return lint.python_files(git.changed_files("", cwd=root, staged=True), root), STAGED
    base = args.base or base_default or history.default_base(root)
    if not base:
        raise DevkitError(
            "cannot tell what changed: no base branch found (no origin/HEAD, main or master)",
            "Pass `--base REF`, `--all`, or paths.",
        )
    return lint.python_files(lint.local_changes(base, root), root), f"changed since `{base}`"


def sync_pre_commit(root: Path, configured: str | None) -> int:
    """`--sync-pre-commit`: the pre-commit config's ruff follows the gate's pin."""
    pin = ruff.find_pin(root, configured)
    if pin is None or pin.source == ruff.PRE_COMMIT_SOURCE:
        raise DevkitError(
            "the project pins no ruff outside .pre-commit-config.yaml: there is nothing to sync",
            "Pin it in pants.toml ([ruff] version) or [tool.devkit.lint] ruff.",
        )
    old = ruff.sync_pre_commit(root, pin.version)
    if old is None:
        raise DevkitError(
            f"{ruff.PRE_COMMIT_CONFIG} has no astral-sh/ruff-pre-commit entry: there is nothing to sync"
        )
    if old == pin.version:
        print(f"{ruff.PRE_COMMIT_CONFIG}: ruff-pre-commit already runs ruff {old} ({pin.source})")
    else:
        print(
            f"{ruff.PRE_COMMIT_CONFIG}: ruff-pre-commit rev {old} -> {pin.version} "
            f"(pinned by {pin.source})"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    root = git.toplevel()
    cfg = settings(args, root)
    opts = config.section(cfg, "lint")
    if args.sync_pre_commit:
        return sync_pre_commit(root, opts["ruff"])
    if args.all:
        report = lint.run([], root, fix=args.fix, all_files=True, pin=opts["ruff"])
    else:
        paths, source = targets(args, root, opts["base"])
        # staged: the index's content, which is what the commit gets (not the working tree's)
        contents = lint.staged_contents(paths, root) if source == STAGED else {}
        report = lint.run(paths, root, fix=args.fix, pin=opts["ruff"], contents=contents)
        if not paths:
            report = report._replace(notes=(f"no Python files to lint ({source})",))
    return finish([report], args.format)
