"""The git edge: one subprocess per question, ranges read in a single `git log`."""

from __future__ import annotations

import os

from devkit import proc
from devkit.errors import DevkitError, GitError
from devkit.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from pathlib import Path


class Commit(Record):
    sha: str
    parents: int | None  # None: a shallow clone's boundary, whose parents are unknown
    author_email: str
    message: bytes  # the raw message (%B), undecoded


def run(*args: str, cwd: str | os.PathLike[str] | None = None) -> proc.Result:
    """`git ARGS` in cwd, output captured; the one place devkit starts git."""
    if cwd is not None:
        return proc.quick("git", "-C", os.fspath(cwd), *args)
    return proc.quick("git", *args)


def _checked(*args: str, cwd: str | os.PathLike[str] | None = None) -> str:
    r = run(*args, cwd=cwd)
    if r.returncode != 0:
        if r.returncode == 127:
            raise DevkitError("git is not installed or not on PATH", "Install git.")
        raise GitError(["git", *args], r.returncode, r.err)
    return r.out


def toplevel(cwd: str | os.PathLike[str] | None = None) -> Path:
    from pathlib import Path

    r = run("rev-parse", "--show-toplevel", cwd=cwd)
    if r.returncode != 0:
        raise DevkitError(
            f"not inside a git repository: {Path(cwd or '.').resolve()}",
            "Run devkit from a git working tree.",
        )
    return Path(r.out.strip())


def current_branch(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The checked-out branch (also on an unborn branch), or None on a detached HEAD."""
    r = run("symbolic-ref", "--quiet", "--short", "HEAD", cwd=cwd)
    if r.returncode == 0:
        return r.out.strip()
    if r.returncode == 1:
        return None
    raise DevkitError(f"cannot read the current branch: {r.err.strip() or 'not a git repository'}")


def config_get(key: str, cwd: str | os.PathLike[str] | None = None) -> str | None:
    r = run("config", "--get", key, cwd=cwd)
    return r.out.strip() if r.returncode == 0 else None


def comment_string(cwd: str | os.PathLike[str] | None = None) -> bytes:
    """core.commentString (git >= 2.45) or core.commentChar, the last one set, as the bytes git
    compares lines with; "auto" is returned as is (in any case, as git reads it)."""
    r = run("config", "--get-regexp", r"^core\.comment(char|string)$", cwd=cwd)
    value = b"#"
    for line in r.stdout.split(b"\n"):
        _, _, v = line.partition(b" ")
        if v:
            value = v
    return value


def ref_exists(ref: str, cwd: str | os.PathLike[str] | None = None) -> bool:
    return run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=cwd).returncode == 0


def is_shallow(cwd: str | os.PathLike[str] | None = None) -> bool:
    return run("rev-parse", "--is-shallow-repository", cwd=cwd).out.strip() == "true"


def merge_base(a: str, b: str, cwd: str | os.PathLike[str] | None = None) -> str | None:
    r = run("merge-base", a, b, cwd=cwd)
    return r.out.strip() if r.returncode == 0 else None


def log_range(rev_range: str, cwd: str | os.PathLike[str] | None = None) -> list[Commit]:
    """Every commit of a range with its raw message, in one `git log` call, oldest first."""
    if not rev_range or rev_range.startswith("-") or "\0" in rev_range:
        raise DevkitError(
            f"`{rev_range}` is not a revision range",
            "Give one such as `main..HEAD` or `origin/main..feat/x`.",
        )
    args = [
        "-c",
        "log.showSignature=false",
        "log",
        "-z",
        "--reverse",
        "--format=%H%x1f%P%x1f%ae%x1f%B",
        "--end-of-options",  # whatever the range says, git reads it as a revision, never an option
        rev_range,
        "--",
    ]
    r = run(*args, cwd=cwd)
    if r.returncode != 0:
        shallow = " (this is a shallow clone)" if is_shallow(cwd) else ""
        raise GitError(
            ["git", "log", rev_range],
            r.returncode,
            r.err,
            "Check the range; in CI fetch enough history (`fetch-depth: 0`)" + shallow + ".",
        )
    grafted: set[str] | None = None  # read (one more git call) only for a commit with no parents
    commits = []
    for record in r.stdout.split(b"\0"):
        record = record.lstrip(b"\n")
        if not record:
            continue
        sha, parents, email, message = record.split(b"\x1f", 3)
        name = sha.decode()
        if parents:
            count: int | None = parents.count(b" ") + 1
        else:
            # a root commit, or a shallow clone's boundary, whose parents (a merge?) are unknown
            if grafted is None:
                grafted = shallow_boundary(cwd)
            count = None if name in grafted else 0
        commits.append(Commit(name, count, email.decode("utf-8", "replace"), message))
    return commits


def shallow_boundary(cwd: str | os.PathLike[str] | None = None) -> set[str]:
    """The commits a shallow clone cut the history at (their parents are not here)."""
    r = run("rev-parse", "--git-path", "shallow", cwd=cwd)
    path = r.out.strip()
    if r.returncode != 0 or not path:
        return set()
    if cwd is not None and not os.path.isabs(path):
        path = os.path.join(os.fspath(cwd), path)
    try:
        with open(path, encoding="ascii") as fh:
            return {line.strip() for line in fh if line.strip()}
    except (OSError, UnicodeDecodeError):
        return set()


def added_files(
    base: str,
    directory: str,
    head: str = "HEAD",
    cwd: str | os.PathLike[str] | None = None,
    staged: bool = False,
) -> list[str]:
    """Paths under directory that head adds relative to its merge base with base (renames are not
    adds); `staged`: what the index adds relative to the commit `base` (committed or staged)."""
    since = ("--cached", base) if staged else (f"{base}...{head}",)
    out = _checked(
        "diff", "--name-only", "-z", "--diff-filter=A", "-M", *since, "--", directory, cwd=cwd
    )
    return [p for p in out.split("\0") if p]


def changed_files(
    base: str, head: str = "HEAD", cwd: str | os.PathLike[str] | None = None, staged: bool = False
) -> list[str]:
    """Existing (not deleted) paths changed between the merge base and head; `staged`: between the
    commit `base` ("": HEAD, also on an unborn branch) and the index."""
    if staged:
        since = (base,) if base else ()
        out = _checked("diff", "--cached", "--name-only", "-z", "--diff-filter=d", *since, cwd=cwd)
    else:
        out = _checked("diff", "--name-only", "-z", "--diff-filter=d", f"{base}...{head}", cwd=cwd)
    return [p for p in out.split("\0") if p]
