"""The edit loop's keys in stack.toml: the `[edit]` group, for stacks whose services run from a
source checkout on the host (`devkit restart --changed`, `devkit watch`, `devkit sync`, VS Code).

    [edit]
    when = "{{ source.mode != 'pypi' }}"  # template: the edit loop exists only when truthy ("" = always)
    checkout = "{{ source.checkout }}"    # template: the checkout's absolute path on the host
    python = "{{ source.python }}"        # template: the dev venv's interpreter
    watch = "{{ source.watch }}"          # template, true/false: run the watcher under supervisord
    debounce = 0.2                        # seconds of quiet after a save before the watcher acts
    pythonpath = ["src"]                  # what the services import from (VS Code, the terminal)
    vscode = true                         # give the checkout a .vscode/settings.json

    [edit.restart]                        # service -> the checkout paths whose change restarts it
    manager = ["src/ai/backend/manager/**", "src/ai/backend/common/**"]

    [[edit.notes]]                        # paths that restart nothing, and what they mean
    paths = ["src/ai/backend/kernel/**"]
    note = "new sessions pick them up"

Paths are relative to the checkout: `*` and `?` stay inside one folder, `**` crosses folders, and a
path without either means that file or folder and everything under it. The watcher is a service of
the stack (`devkit-watch`), added here when the group exists and started when `watch` is true.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, NamedTuple

from devkit import schema as s
from devkit.errors import ConfigError

WATCHER = "devkit-watch"  # the watcher's service name
# on the host (base-relative): the rendered group, which the watcher and the CLI read, and the host
# side of the edit loop (devkit/provision/edit_remote.py); and their file ids
RULES, SCRIPT = "supervisor/edit.json", "supervisor/devkit-edit.py"
RULES_ID, SCRIPT_ID = "edit.json", "devkit-edit.py"
_PATH = re.compile(r"(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._*?/+@-]+")  # fullmatch-ed


class NoteSpec(NamedTuple):
    paths: tuple[str, ...]
    note: str


class EditSpec(NamedTuple):
    when: str  # template
    checkout: str  # template
    python: str  # template
    watch: str  # template
    debounce: float
    pythonpath: tuple[str, ...]
    vscode: bool
    restart: dict[str, tuple[str, ...]]  # service -> path patterns
    notes: tuple[NoteSpec, ...]


def _pattern(value: str, where: s.Where) -> str:
    if not _PATH.fullmatch(value) or "//" in value:
        raise where.fail(
            f"{value!r} is not a path inside the checkout",
            "Write it relative to the checkout, e.g. src/app/** (no leading /, no ..).",
        )
    return value.rstrip("/")


_PATTERNS = s.strings(_pattern)
NOTE = s.Table(s.Key("paths", _PATTERNS), s.Key("note", s.string(r".*\S.*", "a sentence")))
EDIT = s.Table(
    s.Key("when", s.string(), ""),
    s.Key("checkout", s.string(r".*\S.*", "a path template"), "{{ source.checkout }}"),
    s.Key("python", s.string(r".*\S.*", "a path template"), "{{ source.python }}"),
    s.Key("watch", s.string(), "false"),
    s.Key("debounce", s.number(), 0.2),
    s.Key("pythonpath", _PATTERNS, ("src",)),
    s.Key("vscode", s.boolean(), True),
    s.Key("restart", s.mapping(_PATTERNS), {}),
    s.Key("notes", s.list_of(s.table(NOTE)), ()),
)


def parse(data: Any, where: s.Where) -> EditSpec | None:
    if data is None:
        return None
    v = s.validate(EDIT, data, where)
    if not v["restart"]:
        raise where.key("restart").fail(
            "no service restarts for any path",
            'Add a table of service = [paths], e.g. [edit.restart] app = ["src/app/**"].',
        )
    return EditSpec(
        v["when"],
        v["checkout"],
        v["python"],
        v["watch"],
        v["debounce"],
        v["pythonpath"],
        v["vscode"],
        v["restart"],
        tuple(NoteSpec(n["paths"], n["note"]) for n in v["notes"]),
    )


def check(edit: EditSpec | None, services: list[str], source: str) -> None:
    """Every service [edit.restart] names is one of the stack's."""
    if edit is None:
        return
    for name in edit.restart:
        if name not in services:
            raise ConfigError(
                source,
                f"edit.restart.{name}",
                f"no service {name!r} in this stack",
                f"Services: {', '.join(services)}.",
            )


def when_watching(edit: EditSpec) -> str:
    """A template that renders `true` when the edit loop exists and its watcher is on."""
    on = "{{ (v | trim | lower) in ('true', '1', 'yes', 'on') }}"
    watch = "{% set v %}" + edit.watch + "{% endset %}" + on
    if not edit.when:
        return watch
    off = "('false', '0', 'no', 'none', '')"
    return (
        "{% set w %}" + edit.when + "{% endset %}{% set v %}" + edit.watch + "{% endset %}"
        "{{ (w | trim | lower) not in " + off + " and (v | trim | lower) in "
        "('true', '1', 'yes', 'on') }}"
    )


# the watcher's program: the host script under the dev venv's interpreter (so a syntax check reads a
# file as the services' Python does), or the system's python3 until that venv exists
LAUNCH = 'p="$0"; [ -x "$p" ] || p=/usr/bin/python3; exec "$p" -I -S "$1" watch "$2"'
PROGRAM = {"priority": 999, "startsecs": 1, "stopsignal": "TERM", "stopwaitsecs": 5}


def watcher_command(edit: EditSpec) -> str:
    """The watcher's command line as a stack template (rendered with the host's variables)."""
    return (
        f"/bin/sh -c {shlex.quote(LAUNCH)} "
        "{% set py %}" + edit.python + "{% endset %}{{ py | trim | q }} "
        f"{{{{ path('{SCRIPT}') | q }}}} {{{{ path('{RULES}') | q }}}}"
    )


def watcher_line(python: str, base: str) -> str:
    """The same command line, from the values the host's rules hold."""
    words = (python, f"{base}/{SCRIPT}", f"{base}/{RULES}")
    return f"/bin/sh -c {shlex.quote(LAUNCH)} " + " ".join(shlex.quote(w) for w in words)
