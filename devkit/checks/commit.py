"""Commit messages: a hook's message file, a text, or every commit of a range (hook path: light).

Every input goes the same way: git's clean-up on the bytes first (comment lines and the scissors
cut only for a hook's file, as git's editor clean-up has them), then the kept bytes are decoded and
checked. Bytes git drops (a `git commit -v` diff below the scissors, a comment line) never count.
"""

from __future__ import annotations

from devkit.conventions.commit_rules import check_message
from devkit.conventions.message import (
    Cleaned,
    DecodeFailure,
    as_bytes,
    auto_comment,
    clean_already,
    git_cleanup,
    may_have_comments,
)
from devkit.conventions.verdict import violation, with_severities
from devkit.errors import DevkitError
from devkit.record import TYPE_CHECKING
from devkit.violations import ERROR, WARNING, Location, Report, Violation

if TYPE_CHECKING:
    from collections.abc import Callable

    from devkit.conventions.settings import Settings


def comment_of(data: bytes, configured: Callable[[], bytes]) -> bytes:
    """The comment string git cleans the hook's file with: its config (asked only when the file can
    hold a comment), and for `auto` the character git chose, read back from the file it wrote."""
    if not may_have_comments(data):
        return b"#"
    value = configured()
    return auto_comment(data) if value.lower() == b"auto" else value


def _checked(
    cleaned: Cleaned, cfg: Settings, where: Location, parents: int | None = None, author: str = ""
) -> list[Violation]:
    """The rules over a cleaned message, or CM023 for bytes git keeps that are not text."""
    try:
        lines, numbers = cleaned.text()
    except DecodeFailure as exc:
        at = where._replace(line=exc.line)
        if exc.nul:
            return [_nul(at)]
        return [
            violation(
                "CM023",
                f"the message is not valid UTF-8: {exc}",
                at,
                "Save the message as UTF-8 (or set i18n.commitEncoding and re-encode).",
            )
        ]
    return check_message(
        lines,
        cfg.commit,
        numbers=numbers,
        parents=parents,
        file=where.file,
        commit=where.commit,
        author=author,
    )


def check_file(
    path: str,
    data: bytes,
    comment_string: Callable[[], bytes],
    cfg: Settings,
    complete: bool = True,
) -> list[Violation]:
    """A hook's message file; `complete` is False when data is only the file's first part (then the
    scissors line must lie within it: git drops everything below)."""
    cleaned = git_cleanup(data, comment_of(data, comment_string))
    if not complete and not cleaned.cut:
        raise DevkitError(
            f"the message file {path} is too large to be a commit message ({len(data)} bytes "
            "read, no scissors line among them)",
            "Is it the right file? A `git commit -v` diff below the scissors line may be any size.",
        )
    return _checked(cleaned, cfg, Location(path))


def file_report(
    path: str,
    data: bytes,
    comment_string: Callable[[], bytes],
    cfg: Settings,
    complete: bool = True,
) -> Report:
    found = check_file(path, data, comment_string, cfg, complete)
    return _report(found, cfg, 1)


def squash_note(cfg: Settings) -> str:
    """Why a commit message only warns in this project (`[tool.devkit.commit] severity`)."""
    if cfg.preset == "backend.ai":
        return (
            "commit messages only warn under the backend.ai preset, in the hooks and in `devkit "
            "ci` alike: Backend.AI squash-merges, so a pull request's title is the commit that "
            "lands on main (`devkit check title` checks it, as pr-prefix.yml does)"
        )
    return (
        'commit messages only warn here ([tool.devkit.commit] severity = "warning"), in the hooks '
        "and in `devkit ci` alike: the project squash-merges, so a pull request's title is the "
        "commit that lands (`devkit check title` checks it)"
    )


def _report(
    found: list[Violation], cfg: Settings, checked: int, notes: tuple[str, ...] = ()
) -> Report:
    """The commit check's report: the project's severity per rule, and for a project whose commit
    messages only warn (it squash-merges), every error a warning, with the reason."""
    violations = with_severities(found, cfg.rules)
    if cfg.commit.severity == "warning" and any(v.severity == ERROR for v in violations):
        violations = tuple(
            v._replace(severity=WARNING) if v.severity == ERROR else v for v in violations
        )
        notes = (*notes, squash_note(cfg))
    return Report("commit", violations, checked, notes)


def _nul(location: Location) -> Violation:
    return violation(
        "CM023",
        "the message contains a NUL byte; git refuses such a message",
        location,
        "Remove the NUL byte (a binary paste or a wrong encoding).",
    )


def text_report(text: str, cfg: Settings) -> Report:
    """A message given as text (`-m`): kept as written, comment lines included (git's -m); the same
    bytes as a file's (a command line's undecodable bytes come back) get the same verdict."""
    found = _checked(git_cleanup(as_bytes(text), None), cfg, Location())
    return _report(found, cfg, 1)


def _as_committed(message: bytes) -> str | None:
    """The text of a message that git's clean-up keeps line for line, when it is UTF-8: the lines
    are then the commit's own (None: the whole way, `_checked`, which also says where it is not
    text, or holds a NUL)."""
    body = clean_already(message)
    if body is None or b"\0" in body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def committed(
    message: bytes, cfg: Settings, sha: str, parents: int | None, author: str
) -> list[Violation]:
    """The violations of a commit's message (range mode): what `_checked` finds after git's
    clean-up, without the clean-up's copies when git keeps every line as it is."""
    text = _as_committed(message)
    if text is None:
        return _checked(git_cleanup(message, None), cfg, Location(commit=sha), parents, author)
    lines = text.split("\n")
    numbers = range(1, len(lines) + 1)
    return check_message(
        lines, cfg.commit, numbers=numbers, parents=parents, commit=sha, author=author
    )


def range_report(rev_range: str, cfg: Settings, cwd: str | None = None) -> Report:
    """Every commit of a revision range, read with one `git log`."""
    from devkit import git  # not needed by the message-file hook

    commits = git.log_range(rev_range, cwd)
    found: list[Violation] = []
    for c in commits:
        found += committed(c.message, cfg, c.sha, c.parents, c.author_email)
    notes = () if commits else (f"the range `{rev_range}` has no commits",)
    return _report(found, cfg, len(commits), notes)
