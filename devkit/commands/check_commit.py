"""devkit check commit [FILE | -m TEXT | --range A..B]"""

from __future__ import annotations

import os

from devkit import output
from devkit.commands._common import add_config, add_format, finish, format_default, settings
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
from devkit.errors import DevkitError
from devkit.record import TYPE_CHECKING
from devkit.violations import Location, Report, Violation

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable


FAST_OPTIONS = {
    "positional": "file",
    "options": {
        "-m": "message",
        "--message": "message",
        "--range": "rev_range",
        "--format": "format",
        "--config": "config",
    },
    "choices": {"format": output.FORMATS},
    "exclusive": ("file", "message", "rev_range"),
    "defaults": lambda: {
        "file": None,
        "message": None,
        "rev_range": None,
        "format": format_default(),
        "config": None,
    },
}


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("file", nargs="?", help="a message file, as git gives it to a commit-msg hook")
    src.add_argument("-m", "--message", metavar="TEXT", help="check this text")
    src.add_argument(
        "--range", metavar="A..B", dest="rev_range", help="check every commit of a revision range"
    )
    add_format(parser)
    add_config(parser)


def check_file(path: str, data: bytes, comment_string: Callable[[], str], cfg) -> list[Violation]:  # type: ignore[no-untyped-def]
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


def check_range(rev_range: str, cfg, cwd: str | None = None) -> Report:  # type: ignore[no-untyped-def]
    from devkit import git

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


def run(args: argparse.Namespace) -> int:
    cfg = settings(args)
    if args.rev_range:
        return finish([check_range(args.rev_range, cfg)], args.format)
    if args.message is not None:
        lines, numbers = cleanup(args.message.replace("\r\n", "\n"), None)
        found = check_message(lines, cfg.commit, numbers=numbers)
        return finish([Report("commit", tuple(found), 1)], args.format)
    if not args.file:
        raise DevkitError(
            "nothing to check: give a message file, -m TEXT or --range A..B",
            "In a commit-msg hook git passes the file: `devkit check commit .git/COMMIT_EDITMSG`.",
        )
    try:
        with open(args.file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DevkitError(f"cannot read the message file {args.file}: {exc.strerror}") from None

    def ask_git() -> str:  # git is asked (and imported) only when the comment string matters
        from devkit import git

        return git.comment_string(os.path.dirname(args.file) or ".")

    found = check_file(args.file, data, ask_git, cfg)
    return finish([Report("commit", tuple(found), 1)], args.format)
