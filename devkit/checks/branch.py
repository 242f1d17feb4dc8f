"""Branch names: the current branch (or CI's head ref) against the configured patterns (hook path).

The hook runs at every commit on the same branch with the same settings, and its answer depends on
nothing else: the verdict is kept in .git (`devkit-branch.cache`), so a repeated run compiles no
pattern and imports no `re` (about a fifth of a hook run).
"""

from __future__ import annotations

import marshal  # built in
import os

from devkit import __version__, files
from devkit.conventions.verdict import with_severities
from devkit.record import TYPE_CHECKING
from devkit.violations import Location, Report, Violation

if TYPE_CHECKING:
    from typing import Any

    from devkit.conventions.settings import Settings

MEMO_NAME = "devkit-branch.cache"
MEMO_SIZE = 64  # verdicts kept, newest last


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


def _compute(name: str, cfg: Settings) -> Report:
    from devkit.conventions.branch_rules import (  # compiles the patterns
        check_branch,
        is_exempt,
        ref_format_violation,
    )

    if is_exempt(name, cfg.branch):
        # exempt from the project's forms, not from git's: `release/a..b` is no branch at all
        refused = ref_format_violation(name)
        if refused:
            return Report("branch", with_severities(refused, cfg.rules), 1)
        return Report("branch", (), 1, (f"`{name}` is exempt from the naming rules",))
    return Report("branch", with_severities(check_branch(name, cfg.branch), cfg.rules), 1)


def _plain(report: Report) -> Any:
    return (tuple((*v[:3], tuple(v.location), *v[4:]) for v in report.violations), report.notes)


def _report(plain: Any) -> Report:
    found = tuple(Violation(c, n, m, Location(*loc), *rest) for c, n, m, loc, *rest in plain[0])
    return Report("branch", found, 1, tuple(plain[1]))


def branch_report(name: str | None, cfg: Settings, gitdir: str | None = None) -> Report:
    """The verdict on a branch name; with gitdir, remembered there for the next run."""
    if name is None:
        return Report(
            "branch",
            (),
            0,
            ("HEAD is detached; no branch to check (pass a name or set GITHUB_HEAD_REF)",),
        )
    name = name.removeprefix("refs/heads/")
    if not gitdir:
        return _compute(name, cfg)
    # the verdict is a function of these alone (and of devkit's rules: its version)
    key = (__version__, name, tuple(cfg.branch), tuple(sorted(cfg.rules.items())))
    path = os.path.join(gitdir, MEMO_NAME)
    memo: dict[Any, Any] = {}
    try:
        with open(path, "rb") as fh:
            loaded = marshal.load(fh)
        memo = loaded if isinstance(loaded, dict) else {}
        if key in memo:
            return _report(memo[key])
    except (OSError, EOFError, ValueError, TypeError, IndexError):
        memo = {}
    report = _compute(name, cfg)
    memo.pop(key, None)
    memo[key] = _plain(report)
    while len(memo) > MEMO_SIZE:
        memo.pop(next(iter(memo)))
    _save(path, memo)
    return report


def _save(path: str, memo: dict[Any, Any]) -> None:
    """Write the memo through a temp file; on failure (a read-only .git, a folder in the way) no
    memory, the same verdict, and no temp file left behind."""
    try:
        files.write_whole(path, marshal.dumps(memo))
    except (OSError, ValueError):
        pass
