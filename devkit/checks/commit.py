"""Commit messages: a hook's message file, a text, or every commit of a range (hook path: light)."""

from __future__ import annotations

from devkit.conventions.commit_rules import check_message
from devkit.conventions.message import (
    DecodeFailure,
    cleanup,
    comment_in_template,
    decode,
    detect_auto_comment,
    needs_comment_string,
)
from devkit.conventions.registry import violation
from devkit.record import TYPE_CHECKING
from devkit.violations import Location, Report, Violation

if TYPE_CHECKING:
    from collections.abc import Callable

    from devkit.conventions.settings import Settings


def check_file(
    path: str, data: bytes, comment_string: Callable[[], str], cfg: Settings
) -> list[Violation]:
    """A hook's message file; git's comment string is asked for only when it matters."""
    try:
        text = decode(data)
    except DecodeFailure as exc:
        line = data[: exc.offset].count(b"\n") + 1
        return [
            violation(
                "CM023",
                f"the message is not valid UTF-8: {exc}",
                Location(path, line),
                "Save the message as UTF-8 (or set i18n.commitEncoding and re-encode).",
            )
        ]
    comment = comment_in_template(text)
    if comment is None:
        comment = comment_string() if needs_comment_string(text) else "#"
        if comment == "auto":
            comment = detect_auto_comment(text)
    lines, numbers = cleanup(text, comment)
    return check_message(lines, cfg.commit, numbers=numbers, file=path)


def file_report(path: str, data: bytes, comment_string: Callable[[], str], cfg: Settings) -> Report:
    return Report("commit", tuple(check_file(path, data, comment_string, cfg)), 1)


def text_report(text: str, cfg: Settings) -> Report:
    """A message given as text (`-m`): kept as written, comment lines included (git's -m)."""
    lines, numbers = cleanup(text.replace("\r\n", "\n"), None)
    return Report("commit", tuple(check_message(lines, cfg.commit, numbers=numbers)), 1)


def range_report(rev_range: str, cfg: Settings, cwd: str | None = None) -> Report:
    """Every commit of a revision range, read with one `git log`."""
    from devkit import git  # not needed by the message-file hook

    commits = git.log_range(rev_range, cwd)
    found: list[Violation] = []
    for c in commits:
        try:
            text = decode(c.message)
        except DecodeFailure as exc:
            found.append(
                violation("CM023", f"the message is not valid UTF-8: {exc}", Location(commit=c.sha))
            )
            continue
        lines, numbers = cleanup(text, None)
        found += check_message(
            lines,
            cfg.commit,
            numbers=numbers,
            parents=c.parents,
            commit=c.sha,
            author=c.author_email,
        )
    notes = () if commits else (f"the range `{rev_range}` has no commits",)
    return Report("commit", tuple(found), len(commits), notes)
