"""The edit loop's files on the host: the stack's `[edit]` group rendered for this host
(supervisor/edit.json) and the host side that reads it (supervisor/devkit-edit.py, the source of
devkit/provision/host_edit.py). The files kind writes them; the watcher (`devkit-watch`, a service
editspec adds to the stack) runs from them, and `devkit restart --changed` and `devkit sync` read
the rules there, so every way of restarting agrees on what a path means."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any, NamedTuple

from devkit.errors import ConfigError
from devkit.provision.kinds import editspec
from devkit.provision.kinds.base import ApplyContext, Build, Desired, Facts, Op, PlanState
from devkit.provision.kinds.files import DFile
from devkit.provision.onhost import edit as host_edit
from devkit.provision.ssh.connection import Connection

NAME = "edit"


class DEdit(NamedTuple):
    checkout: str  # absolute, on the host
    python: str  # the dev venv's interpreter, absolute
    pythonpath: tuple[str, ...]  # relative to the checkout
    vscode: bool
    rules: dict[str, Any]  # what supervisor/edit.json holds


def request(stack: Any) -> dict[str, Any]:
    return {}


def collect(req: Any, base: str) -> dict[str, Any]:  # runs on the host
    return {}


REMOTE = (collect,)


def parse(raw: Any) -> dict[str, Any]:
    return {}


def _absolute(text: str, home: str, where: str, source: str) -> str:
    path = text.strip()
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    if not path.startswith("/") or "\n" in path:
        raise ConfigError(
            source,
            where,
            f"{path!r} is not an absolute path on the host",
            "Render it to an absolute path, e.g. {{ home }}/project or ~/project.",
        )
    return posixpath.normpath(path)


def enabled(text: str) -> bool:
    return text.strip().lower() not in ("false", "0", "no", "none", "")


def desired(b: Build) -> DEdit | None:
    """The rendered group, or None when the stack has none or it is off (`when`) on this host;
    adds the rules and the host script to the files."""
    e: editspec.EditSpec | None = b.stack.edit
    r = b.render.text
    if e is None or (e.when and not enabled(r(e.when, "edit.when"))):
        return None
    src, home = b.stack.source, b.facts.host.home
    checkout = _absolute(r(e.checkout, "edit.checkout"), home, "edit.checkout", src)
    python = _absolute(r(e.python, "edit.python"), home, "edit.python", src)
    programs = {s.name: s.program.priority for s in b.stack.services}
    order = sorted((n for n in e.restart if n in programs), key=lambda n: programs[n])
    rules = {
        "version": 1,
        "stack": b.stack.name,
        "host": b.render.text("{{ host }}", "edit"),
        "base": b.layout.base,
        "checkout": checkout,
        "python": python,
        "debounce": e.debounce,
        "pythonpath": list(e.pythonpath),
        "order": order,
        "services": {n: list(e.restart[n]) for n in order},
        "notes": [{"paths": list(n.paths), "note": n.note} for n in e.notes],
    }
    login = b.render.login
    files: list[DFile] = b.built["files"]
    text = json.dumps(rules, indent=1) + "\n"
    files.append(DFile(editspec.RULES_ID, editspec.RULES, text, 0o640, login, ""))
    script = Path(host_edit.__file__).read_text(encoding="utf-8")
    files.append(DFile(editspec.SCRIPT_ID, editspec.SCRIPT, script, 0o640, login, ""))
    return DEdit(checkout, python, e.pythonpath, e.vscode, rules)


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    return []  # its files are the files kind's; its watcher is a program


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    raise AssertionError("the edit kind plans no ops")
