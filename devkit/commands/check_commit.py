"""devkit check commit [FILE | -m TEXT | --range A..B]"""

from __future__ import annotations

import os

from devkit import files, output
from devkit.checks.commit import file_report, range_report, text_report
from devkit.commands._common import add_config, add_format, finish, format_default, settings
from devkit.errors import DevkitError
from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

# read at most this much of a message file: git's scissors line (`git commit -v`) must lie within
MESSAGE_LIMIT = 8 * files.MiB

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


def _paragraphs_action() -> type:
    import argparse

    class Paragraphs(argparse.Action):
        """Repeated -m: the texts joined by a blank line, as git commit joins them."""

        def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
            before = getattr(namespace, self.dest, None)
            setattr(namespace, self.dest, values if before is None else f"{before}\n\n{values}")

    return Paragraphs


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    _Paragraphs = _paragraphs_action()
    src = parser.add_mutually_exclusive_group()
    src.add_argument("file", nargs="?", help="a message file, as git gives it to a commit-msg hook")
    src.add_argument(
        "-m",
        "--message",
        metavar="TEXT",
        action=_Paragraphs,
        help="check this text (repeated: paragraphs, as `git commit -m A -m B` joins them)",
    )
    src.add_argument(
        "--range", metavar="A..B", dest="rev_range", help="check every commit of a revision range"
    )
    add_format(parser)
    add_config(parser)


def run(args: argparse.Namespace) -> int:
    cfg = settings(args)
    if args.rev_range:
        return finish([range_report(args.rev_range, cfg)], args.format)
    if args.message is not None:
        return finish([text_report(args.message, cfg)], args.format)
    if not args.file:
        raise DevkitError(
            "nothing to check: give a message file, -m TEXT or --range A..B",
            "In a commit-msg hook git passes the file: `devkit check commit .git/COMMIT_EDITMSG`.",
        )
    complete = True
    try:
        data = files.read_regular(args.file, "the message file", MESSAGE_LIMIT)
    except files.TooLarge as exc:  # a `git commit -v` diff: what matters lies above the scissors
        data, complete = exc.head, False

    def ask_git() -> bytes:  # git is asked (and imported) only when the comment string matters
        from devkit import git

        return git.comment_string(os.path.dirname(args.file) or ".")

    return finish([file_report(args.file, data, ask_git, cfg, complete)], args.format)
