"""devkit completion bash|zsh|tcsh: the shell completion script, generated from devkit's parser."""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "tcsh")


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete devkit's commands in")


def run(args: argparse.Namespace) -> int:
    import shtab  # generates the script from argparse's parser (every command and option)

    from devkit.cli import parser

    sys.stdout.write(shtab.complete(parser(), shell=args.shell))
    return 0
