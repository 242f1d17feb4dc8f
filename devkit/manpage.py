"""A roff manual page (man(7) macros) from an argparse parser and its subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

EXIT_STATUS = (
    ("0", "clean (warnings do not fail)"),
    ("1", "violations, or a check that could not run"),
    ("2", "a usage or configuration error (one line that names the file and key)"),
    ("130", "interrupted"),
)


def roff(text: str) -> str:
    """Text as roff shows it: backslashes and hyphens escaped, a line never starting a request."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in out.splitlines()
    )


def commands(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command with options of its own, as (its words, its parser), in the parser's order."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield words, parser
        return
    for name, sub in subs[0].choices.items():
        yield from commands(sub, (*words, name))


def _option(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    """One option or positional as a tagged paragraph: its forms, then its help."""
    if action.option_strings:
        metavar = ""
        if action.nargs != 0:
            metavar = formatter._format_args(action, action.dest.upper())
        forms = ", ".join(f"\\fB{roff(o)}\\fR" for o in action.option_strings)
        head = forms + (f" \\fI{roff(metavar)}\\fR" if metavar else "")
    else:
        head = f"\\fI{roff(formatter._format_args(action, action.dest))}\\fR"
    help_text = formatter._expand_help(action) if action.help else ""
    return f".TP\n{head}\n{roff(' '.join(help_text.split()))}"


def _section(words: tuple[str, ...], parser: argparse.ArgumentParser) -> str:
    formatter = parser._get_formatter()
    usage = " ".join(parser.format_usage().split()).removeprefix("usage: ")
    lines = [f'.SS "devkit {" ".join(words)}"', roff(parser.description or ""), ".PP", roff(usage)]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        lines.append(_option(action, formatter))
    if parser.epilog:
        lines += [".PP", roff(parser.epilog)]
    return "\n".join(lines)


def manpage(parser: argparse.ArgumentParser, version: str) -> str:
    """devkit(1): name, synopsis, devkit's own options, every command with its options, exit codes."""
    top = parser._get_formatter()
    own = [
        _option(a, top)
        for a in parser._actions
        if a.option_strings and not isinstance(a, argparse._HelpAction)
    ]
    parts = [
        f'.TH DEVKIT 1 "" "devkit {roff(version)}" "User Commands"',
        ".SH NAME",
        f"devkit \\- {roff(parser.description or '')}",
        ".SH SYNOPSIS",
        ".B devkit",
        "[\\fB\\-\\-version\\fR] [\\fB\\-\\-debug\\fR] \\fICOMMAND\\fR [\\fIoptions\\fR]",
        ".SH OPTIONS",
        *own,
        ".SH COMMANDS",
        *(_section(words, sub) for words, sub in commands(parser)),
        ".SH EXIT STATUS",
        *(f".TP\n\\fB{code}\\fR\n{roff(what)}" for code, what in EXIT_STATUS),
        ".SH SEE ALSO",
        "\\fBgit\\fR(1), \\fBpre\\-commit\\fR(1), \\fBruff\\fR(1), \\fBtowncrier\\fR(1)",
    ]
    return "\n".join(parts) + "\n"
