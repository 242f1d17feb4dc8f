"""devkit man: devkit's manual page, generated from its parser (every command and option)."""

from __future__ import annotations

import argparse
import sys

from devkit import __version__


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.epilog = (
        "Read it with `devkit man | man -l -`; install it with "
        "`devkit man > ~/.local/share/man/man1/devkit.1`."
    )


def run(args: argparse.Namespace) -> int:
    from devkit.cli import parser
    from devkit.manpage import manpage

    sys.stdout.write(manpage(parser(), __version__))
    return 0
