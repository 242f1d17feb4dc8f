"""The `devkit` command: a lazy command table, so each command imports only what it needs.

The hook paths (`check commit`, `check branch`) must stay on the standard library and the core;
tests/test_imports.py enforces it.
"""

from __future__ import annotations

import os
import sys

from devkit import __version__
from devkit.errors import DevkitError, ExitCode
from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from typing import Any, NoReturn

# (command words) -> (module, one-line summary); a module exposes configure(parser) and run(args) -> int
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("check", "commit"): (
        "devkit.commands.check_commit",
        "Check commit messages: a hook's message file, -m TEXT, or --range A..B.",
    ),
    ("check", "branch"): (
        "devkit.commands.check_branch",
        "Check a branch name (default: the current branch).",
    ),
    ("check", "title"): (
        "devkit.commands.check_title",
        "Check a pull request title as the commit it becomes: devkit check title TEXT [--pr N].",
    ),
    ("check", "news"): (
        "devkit.commands.check_news",
        "Check the news fragments in the towncrier directory.",
    ),
    ("news", "new"): (
        "devkit.commands.news",
        "Create a news fragment: devkit news new TYPE TEXT [--pr N].",
    ),
    ("news", "assign"): (
        "devkit.commands.news",
        "Give placeholder fragments (fix.md) the pull request's number.",
    ),
    ("news", "preview"): (
        "devkit.commands.news",
        "Show the next changelog section (towncrier build --draft).",
    ),
    ("explain",): ("devkit.commands.explain", "Explain a rule: devkit explain CM003."),
    ("lint",): (
        "devkit.commands.lint",
        "Run ruff check and ruff format on changed (or all) Python files.",
    ),
    ("ci",): ("devkit.commands.ci", "Everything a pull request must pass, in one report."),
    ("init",): ("devkit.commands.init", "Set up devkit's conventions in a repository."),
    ("doctor",): (
        "devkit.commands.doctor",
        "Check this clone: config, fragments, pre-commit's git hooks, the project's ruff.",
    ),
    ("provision",): (
        "devkit.commands.provision",
        "Bring hosts to the stack's desired state over SSH.",
    ),
    ("status",): (
        "devkit.commands.operate",
        "Show each service's state, pid, uptime and health on a host.",
    ),
    ("start",): ("devkit.commands.operate", "Start a host's services (or one)."),
    ("stop",): ("devkit.commands.operate", "Stop a host's services (or one)."),
    ("restart",): (
        "devkit.commands.operate",
        "Restart a host's services (or one); --changed: those whose checkout files changed.",
    ),
    ("logs",): ("devkit.commands.operate", "Show or follow a service's log on a host."),
    ("teardown",): (
        "devkit.commands.operate",
        "Stop everything on a host; --purge removes its base directory.",
    ),
    ("watch",): (
        "devkit.commands.edit",
        "Show the host's watcher, which restarts a service when its files are saved.",
    ),
    ("sync",): (
        "devkit.commands.edit",
        "Push this clone's branch and uncommitted work to the host's checkout; restart what changed.",
    ),
    ("code",): ("devkit.commands.edit", "Open the host's checkout in VS Code over SSH."),
    ("ssh-config",): (
        "devkit.commands.ssh_config",
        "Print (or --write) the ssh_config Host blocks for a host: HOST, and HOST-tunnel with its forwards.",
    ),
    ("completion",): (
        "devkit.commands.completion",
        "Print the shell completion script: devkit completion bash|zsh|tcsh.",
    ),
    ("man",): ("devkit.commands.man", "Print devkit's manual page (roff): devkit man | man -l -."),
    ("sandbox", "up"): (
        "devkit.commands.sandbox",
        "Start a local SSH sandbox host (as root an isolated Debian host of its own).",
    ),
    ("sandbox", "down"): ("devkit.commands.sandbox", "Stop and remove a sandbox host."),
    ("sandbox", "list"): ("devkit.commands.sandbox", "List the sandbox hosts."),
    ("sandbox", "cache"): (
        "devkit.commands.sandbox",
        "List, build or clear the cached Debian roots of isolated sandboxes.",
    ),
}
# the provision extra (`monorepo-devkit[provision]`) and what its packages import
PROVISION_PACKAGES = ("fabric", "paramiko", "invoke", "rich")
GROUPS = {
    "check": "Check conventions.",
    "news": "Work with news fragments.",
    "sandbox": "Local SSH sandbox hosts.",
}


def _available() -> dict[tuple[str, ...], tuple[str, str]]:
    import importlib.util  # --help only: the hook paths never need it

    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def _help(prefix: tuple[str, ...] = ()) -> str:
    table = _available()
    rows = [(" ".join(k), s) for k, (_, s) in table.items() if k[: len(prefix)] == prefix]
    width = max(len(r[0]) for r in rows) if rows else 0
    head = f"usage: devkit {' '.join(prefix) + ' ' if prefix else ''}COMMAND [options]\n\n"
    body = "\n".join(f"  {name.ljust(width)}  {summary}" for name, summary in rows)
    tail = "\n\nRun `devkit COMMAND --help` for a command's options. Exit codes: 0 clean, 1 violations, 2 usage or config error."
    return head + "commands:\n" + body + tail + "\n"


def _find(argv: list[str]) -> tuple[tuple[str, ...], list[str]]:
    words = []
    for a in argv:
        if a.startswith("-"):
            break
        words.append(a)
    for n in (2, 1):
        if len(words) >= n and tuple(words[:n]) in COMMANDS:
            return tuple(words[:n]), argv[n:]
    return (), argv


def _suggest(words: list[str]) -> str:
    from devkit.conventions.suggest import did_you_mean  # the error path only

    typed = " ".join(words)
    names = sorted({" ".join(k[: len(words)]) for k in COMMANDS if len(k) >= len(words)})
    # a command is a typo of another only when close: `bogus` is not `logs` (two edits in five)
    close = did_you_mean(typed, names, max_distance=max(1, len(typed) // 3))
    return (
        f"Did you mean `devkit {close}`?"
        if close
        else "Run `devkit --help` for the list of commands."
    )


def _unknown(argv: list[str]) -> DevkitError:
    """The error for a command line that names no command: an option devkit does not take before
    the command, or a command (or a group's command) that does not exist."""
    if argv[0].startswith("-"):
        return DevkitError(
            f"unknown option `{argv[0]}`",
            "Before a command devkit takes --version (-V), --debug and --help; a command's own "
            "options come after it (`devkit COMMAND --help`).",
        )
    words = []
    for arg in argv[:2]:
        if arg.startswith("-"):
            break
        words.append(arg)
    return DevkitError(f"unknown command `{' '.join(words)}`", _suggest(words))


def _load(path: tuple[str, ...]) -> Any:
    """The module of command `path`, imported."""
    module_name = COMMANDS[path][0]
    try:
        __import__(module_name)  # what importlib.import_module does, without importing importlib
        return sys.modules[module_name]
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            raise DevkitError(f"`devkit {' '.join(path)}` is not available in this build") from None
        raise _missing(path, exc) from None


def parser() -> argparse.ArgumentParser:
    """The whole command line as one argparse parser, every command a subparser configured by its
    module (the reference docs read it). `devkit` itself builds only the parser of the command it
    runs, so that a hook run imports neither argparse nor the other commands."""
    import argparse

    top = argparse.ArgumentParser(
        prog="devkit",
        description="Conventions checks, one CI step, and dev stacks over SSH.",
        epilog="Exit codes: 0 clean, 1 violations, 2 usage or config error, 130 interrupted.",
    )
    top.add_argument("-V", "--version", action="version", version=f"devkit {__version__}")
    top.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    words = top.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, Any] = {}
    for path, (_, summary) in _available().items():
        parent = words
        if len(path) == 2:
            if path[0] not in groups:
                about = GROUPS[path[0]]
                group = words.add_parser(path[0], help=about, description=about)
                groups[path[0]] = group.add_subparsers(title="commands", metavar="COMMAND")
            parent = groups[path[0]]
        sub = parent.add_parser(path[-1], help=summary, description=summary)
        try:
            _load(path).configure(sub, path)
        except DevkitError as exc:  # the provision extra is not installed: no options to list
            sub.description = f"{summary} ({exc.message})"
    return top


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(_help())
        return ExitCode.OK if argv else ExitCode.ERROR
    if argv[0] in ("--version", "-V"):
        sys.stdout.write(f"devkit {__version__}\n")
        return ExitCode.OK
    path, rest = _find(argv)
    if not path:
        if argv[0] in GROUPS and (len(argv) == 1 or argv[1].startswith("-")):
            sys.stdout.write(_help((argv[0],)))
            return ExitCode.OK if argv[1:2] in (["-h"], ["--help"]) else ExitCode.ERROR
        raise _unknown(argv)
    module = _load(path)
    summary = COMMANDS[path][1]
    args = fast_parse(rest, module.FAST_OPTIONS) if hasattr(module, "FAST_OPTIONS") else None
    if args is None:
        parser = _parser_class()(prog=f"devkit {' '.join(path)}", description=summary)
        module.configure(parser, path)
        try:
            args = parser.parse_args(rest)
        except SystemExit as exc:  # argparse printed the usage error (or --help) already
            if exc.code == ExitCode.ERROR and _wants_json(argv):
                _json_error(path, "usage error: see the message on standard error")
            raise
    args.command = path
    try:
        return int(module.run(args))
    except ModuleNotFoundError as exc:  # a command that imports its libraries when it needs them
        if (exc.name or "").partition(".")[0] not in PROVISION_PACKAGES:
            raise
        raise _missing(path, exc) from None


def _missing(path: tuple[str, ...], exc: ModuleNotFoundError) -> DevkitError:
    command = f"`devkit {' '.join(path)}`"
    if (exc.name or "").partition(".")[0] in PROVISION_PACKAGES:
        return DevkitError(
            f"{command} needs devkit's provision extra: pip install 'monorepo-devkit[provision]'"
        )
    return DevkitError(
        f"{command} needs the Python package `{exc.name}`",
        "Reinstall devkit with its dependencies (`pip install monorepo-devkit`).",
    )


def _parser_class() -> type:
    """argparse's parser, its usage errors (which quote the arguments) printed with their control
    characters escaped."""
    import argparse

    from devkit.output import shown

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # type: ignore[override]
            super().error(shown(message))

    return Parser


def fast_parse(argv: list[str], spec: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The hook commands' plain argument lists without argparse (its import costs a hook ~6 ms).
    Anything unusual (help, a bad value, an unknown or repeated option) returns None, and argparse
    parses it instead, with its usual messages; tests/test_cli_fast.py keeps the two in step."""
    from types import SimpleNamespace

    values: dict[str, Any] = dict(spec["defaults"]())
    options: dict[str, str] = spec["options"]
    choices: dict[str, tuple[str, ...]] = spec.get("choices", {})
    positional: str | None = spec.get("positional")
    seen: set[str] = set()
    it = iter(argv)
    for arg in it:
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            dest = options.get(name)
            if dest is None or dest in seen:
                return None
            if not eq:
                value = next(it, None)  # type: ignore[assignment]
                if value is None:
                    return None
            if dest in choices and value not in choices[dest]:
                return None
            values[dest] = value
            seen.add(dest)
        elif positional and positional not in seen:
            values[positional] = arg
            seen.add(positional)
        else:
            return None
    exclusive = spec.get("exclusive", ())
    if sum(1 for d in exclusive if d in seen) > 1:
        return None
    return SimpleNamespace(**values)


def _wants_json(argv: list[str]) -> bool:
    """Whether the run asked for `--format json` (an option, or DEVKIT_FORMAT)."""
    asked = [
        argv[i + 1] if arg == "--format" else arg.removeprefix("--format=")
        for i, arg in enumerate(argv)
        if (arg == "--format" and i + 1 < len(argv)) or arg.startswith("--format=")
    ]
    return "json" in asked if asked else os.environ.get("DEVKIT_FORMAT") == "json"


def _json_error(path: tuple[str, ...], message: str) -> None:
    """The JSON report of a run that could not check anything (a usage or configuration error)."""
    from devkit import output
    from devkit.violations import Report

    check = path[-1] if path[:1] == ("check",) else (path[0] if path else "devkit")
    output.render_json([Report(check, error=message)], sys.stdout)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("DEVKIT_DEBUG"))
    if argv[:1] == ["--debug"]:
        debug, argv = True, argv[1:]
    try:
        return _dispatch(argv)
    except DevkitError as exc:
        from devkit.output import shown  # what went wrong often quotes the user's input

        sys.stderr.write(f"devkit: error: {shown(exc.message)}\n")
        if exc.hint:
            sys.stderr.write(f"    hint: {shown(exc.hint)}\n")
        if _wants_json(argv):
            _json_error(_find(argv)[0], exc.message + (f" ({exc.hint})" if exc.hint else ""))
        return ExitCode.ERROR
    except KeyboardInterrupt:
        sys.stderr.write("devkit: interrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`devkit ... | head`); silence the flush at exit too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        if debug:
            raise
        from devkit.output import shown

        sys.stderr.write(
            f"devkit: internal error: {type(exc).__name__}: {shown(str(exc))}\n"
            "    hint: run again with `devkit --debug ...` for the traceback and report it.\n"
        )
        if _wants_json(argv):
            _json_error(_find(argv)[0], f"internal error: {type(exc).__name__}: {exc}")
        return ExitCode.ERROR
