"""Branch names: the current branch (or CI's head ref) against the configured patterns (hook path)."""

from __future__ import annotations

import os

from devkit.conventions.branch_rules import check_branch, is_exempt
from devkit.record import TYPE_CHECKING
from devkit.violations import Report

if TYPE_CHECKING:
    from devkit.conventions.settings import Settings


def resolve_name(explicit: str | None, cwd: str | None = None) -> tuple[str | None, str]:
    """(name, where it came from); name is None on a detached HEAD outside CI."""
    if explicit:
        return explicit, "argument"
    from devkit import git  # a name given on the command line needs no git

    branch = git.current_branch(cwd)
    if branch is not None:
        return branch, "current branch"
    head_ref = os.environ.get("GITHUB_HEAD_REF")
    if head_ref:
        return head_ref, "GITHUB_HEAD_REF"
    return None, "detached HEAD"


def branch_report(name: str | None, cfg: Settings) -> Report:
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
