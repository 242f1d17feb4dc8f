"""Enough history for a pull request's range: find the base, fetch it, deepen a shallow clone."""

from __future__ import annotations

import os
from typing import NamedTuple

from devkit import git
from devkit.errors import DevkitError

Cwd = str | os.PathLike[str] | None
FIRST_DEPTH = 50  # commits fetched or deepened at first; doubled each round
ROUNDS = 5  # then `--unshallow`


class Range(NamedTuple):
    base: str
    head: str
    merge_base: str
    notes: tuple[str, ...] = ()  # what was fetched to get here


def default_base(cwd: Cwd = None) -> str | None:
    """origin's default branch (origin/HEAD), else the first of origin/main, origin/master, main, master."""
    r = git.run("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", cwd=cwd)
    if r.returncode == 0 and r.out.strip():
        return r.out.strip()
    for ref in ("origin/main", "origin/master", "main", "master"):
        if git.ref_exists(ref, cwd):
            return ref
    return None


def _remotes(cwd: Cwd) -> list[str]:
    return git.run("remote", cwd=cwd).out.split()


def remote_branch(base: str, cwd: Cwd) -> tuple[str, str] | None:
    """("origin", "main") for a remote-tracking `origin/main`; None for anything else."""
    ref = base.removeprefix("refs/remotes/")
    remote, _, branch = ref.partition("/")
    return (remote, branch) if branch and remote in _remotes(cwd) else None


def _fetch(cwd: Cwd, *args: str) -> None:
    r = git.run("-c", "protocol.version=2", "fetch", "--quiet", "--no-tags", *args, cwd=cwd)
    if r.returncode != 0:
        tail = r.err.strip().splitlines()[-1] if r.err.strip() else f"exit code {r.returncode}"
        raise DevkitError(f"`git fetch {' '.join(args)}` failed: {tail}")


def resolve(
    base: str,
    head: str = "HEAD",
    cwd: Cwd = None,
    deepen: bool = False,
    advice: str = "run with `--deepen`",
) -> Range:
    """The merge base of base and head; with deepen, fetch the base and deepen a shallow clone
    until there is one. Raises DevkitError with a clear message when the range cannot be read."""
    notes: list[str] = []
    if not git.ref_exists(head, cwd):
        raise DevkitError(f"head `{head}` does not exist here; nothing was checked")
    target = remote_branch(base, cwd)
    refspec = f"+refs/heads/{target[1]}:refs/remotes/{target[0]}/{target[1]}" if target else ""
    shallow = git.is_shallow(cwd)
    if not git.ref_exists(base, cwd):
        if not (deepen and target):
            where = " (this is a shallow clone)" if shallow else ""
            how = advice if target else "pass an existing ref with `--base`"
            raise DevkitError(
                f"base ref `{base}` does not exist here{where}; nothing was checked "
                f"({how}, or check out with `fetch-depth: 0`)"
            )
        _fetch(cwd, *((f"--depth={FIRST_DEPTH}",) if shallow else ()), target[0], refspec)
        notes.append(f"fetched `{base}`" + (f" ({FIRST_DEPTH} commits deep)" if shallow else ""))
        if not git.ref_exists(base, cwd):
            raise DevkitError(
                f"base ref `{base}` is still missing after fetching it; nothing was checked"
            )
    mb = git.merge_base(base, head, cwd)
    depth = FIRST_DEPTH
    rounds = 0
    while mb is None and deepen and target and git.is_shallow(cwd):
        if rounds < ROUNDS:
            _fetch(cwd, f"--deepen={depth}", target[0], refspec)
            notes.append(f"deepened the clone by {depth} commits")
            depth *= 2
        else:
            _fetch(cwd, "--unshallow", target[0], refspec)
            notes.append("fetched the whole history (`--unshallow`)")
        rounds += 1
        mb = git.merge_base(base, head, cwd)
    if mb is None:
        if git.is_shallow(cwd):
            how = advice if not deepen else "fetch more history"
            raise DevkitError(
                f"`{base}` and `{head}` have no merge base because the clone is shallow; "
                f"nothing was checked ({how}, or check out with `fetch-depth: 0`)"
            )
        raise DevkitError(
            f"`{base}` and `{head}` have no common history; nothing was checked "
            "(check that the base branch is right)"
        )
    return Range(base, head, mb, tuple(notes))
