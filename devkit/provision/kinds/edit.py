"""The edit loop's `[edit]` group of stack.toml, for stacks whose services run from a source checkout
on the host (`devkit restart --changed`, `devkit watch`, `devkit sync`, VS Code), and its files on
the host: the group rendered for this host (supervisor/edit.json) and the host side that reads it
(supervisor/devkit-edit.py: devkit/provision/onhost/edit/ shipped as one script). The files kind writes
them; the watcher (`devkit-watch`, a service this kind adds to the stack) runs from them, and
`devkit restart --changed` and `devkit sync` read the rules there, so every way of restarting
agrees on what a path means.

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

    [edit.overlap]                        # service -> template: the port its new process listens on
    manager = "{{ manager.port }}"        #   (bound with SO_REUSEPORT): it starts beside the old one

    [edit.stop_first]                     # service -> why it is stopped before it starts again
    agent = "it holds its session containers"

    warm = ["manager"]                    # services of [edit.overlap] forked from a warm interpreter

    [[edit.notes]]                        # paths that restart nothing, and what they mean
    paths = ["src/ai/backend/kernel/**"]
    note = "new sessions pick them up"

Paths are relative to the checkout: `*` and `?` stay inside one folder, `**` crosses folders, and a
path without either means that file or folder and everything under it. The watcher is a service of
the stack (`devkit-watch`), added here when the group exists and started when `watch` is true.
Every service of [edit.restart] runs under devkit's launcher (onhost/edit/launch.py), which lets a
restart start the new process beside the old one and records what each process imported.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any, NamedTuple

from devkit import schema as s
from devkit.errors import ConfigError
from devkit.provision.kinds.base import (
    LATER,
    ApplyContext,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
    no_check,
    no_diff,
    no_finish,
    no_notes,
    no_refresh,
    no_steps,
)
from devkit.provision.kinds.files import DFile
from devkit.provision.onhost.facts import read
from devkit.provision.ssh import ship
from devkit.provision.ssh.command import q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.spec import Group, ProgramSpec, ServiceSpec, Stack

NAME = "edit"
WATCHER = "devkit-watch"  # the watcher's service name
# on the host (base-relative): the rendered group, which the watcher and the CLI read, and the host
# side of the edit loop (devkit/provision/onhost/edit.py); and their file ids
RULES, SCRIPT = layout.EDIT_RULES, layout.EDIT_SCRIPT
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
    overlap: dict[str, str]  # service -> template: the port its new process listens on
    stop_first: dict[str, str]  # service -> why it is stopped before it starts again
    warm: tuple[str, ...] = ()  # services whose new process is forked from a warm interpreter


def _pattern(value: str, where: s.Where) -> str:
    """a path inside the checkout: `*` and `?` stay in a folder, `**` crosses folders."""
    if not _PATH.fullmatch(value) or "//" in value:
        raise where.fail(
            f"{value!r} is not a path inside the checkout",
            "Write it relative to the checkout, e.g. src/app/** (no leading /, no ..).",
        )
    return value.rstrip("/")


_PATTERNS = s.strings(_pattern)
NOTE = s.Table(
    s.Key("paths", _PATTERNS, doc="checkout paths that restart nothing"),
    s.Key("note", s.string(r".*\S.*", "a sentence"), doc="what a change there means"),
)
EDIT = s.Table(
    s.Key("when", s.string(), "", "template: the edit loop exists only when this renders truthy"),
    s.Key(
        "checkout",
        s.string(r".*\S.*", "a path template"),
        "{{ source.checkout }}",
        "template: the checkout's absolute path on the host",
    ),
    s.Key(
        "python",
        s.string(r".*\S.*", "a path template"),
        "{{ source.python }}",
        "template: the dev venv's interpreter",
    ),
    s.Key("watch", s.string(), "false", "template, true or false: run the watcher"),
    s.Key("debounce", s.number(), 0.2, "seconds of quiet after a save before the watcher acts"),
    s.Key(
        "pythonpath", _PATTERNS, ("src",), "what the services import from (VS Code, its terminal)"
    ),
    s.Key("vscode", s.boolean(), True, "give the checkout a .vscode/settings.json"),
    s.Key("restart", s.mapping(_PATTERNS), {}, "service -> the checkout paths that restart it"),
    s.Key(
        "overlap",
        s.mapping(s.string(r".*\S.*", "a port template")),
        {},
        "service -> template: the port its new process listens on (with SO_REUSEPORT), so a "
        "restart starts it beside the old one and stops the old one once it serves",
    ),
    s.Key(
        "stop_first",
        s.mapping(s.string(r".*\S.*", "a sentence")),
        {},
        "service -> why a restart stops it before starting it again (said with the restart)",
    ),
    s.Key(
        "warm",
        s.strings(),
        (),
        "services of [edit.overlap] whose new process is forked from a warm interpreter (what "
        "the serving process imported, but the files being edited, imported already)",
    ),
    s.Key("notes", s.list_of(s.table(NOTE)), (), "paths that restart nothing, and why"),
)


SCHEMA = s.table(EDIT)


def _parse_group(data: Any, where: s.Where, dirs: tuple[Path, ...]) -> EditSpec | None:
    if data is None:
        return None
    v = SCHEMA(data, where)
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
        v["overlap"],
        v["stop_first"],
        tuple(v["warm"]),
    )


def spec_of(stack: Stack) -> EditSpec | None:
    """The stack's [edit], if it has an edit loop."""
    return stack.group(NAME)  # type: ignore[no-any-return]


def _check_group(stack: Stack) -> None:
    """Every service [edit.restart] names is one of the stack's, and [edit.overlap] and
    [edit.stop_first] name services of [edit.restart], each in one of them at most."""
    edit = spec_of(stack)
    if edit is None:
        return
    services = [svc.name for svc in stack.services]
    for name in edit.restart:
        if name not in services:
            raise ConfigError(
                stack.source,
                f"edit.restart.{name}",
                f"no service {name!r} in this stack",
                f"Services: {', '.join(services)}.",
            )
    for name in edit.warm:
        if name not in edit.overlap:
            raise ConfigError(
                stack.source,
                "edit.warm",
                f"{name!r} is not a service of [edit.overlap]",
                "A warm start is a restart's new process beside the old one: give the service's "
                "port in [edit.overlap] first.",
            )
    for key, table in (("overlap", edit.overlap), ("stop_first", edit.stop_first)):
        for name in table:
            if name not in edit.restart:
                raise ConfigError(
                    stack.source,
                    f"edit.{key}.{name}",
                    f"{name!r} is not a service of [edit.restart]",
                    f"Those are: {', '.join(edit.restart)}.",
                )
            if key == "stop_first" and name in edit.overlap:
                raise ConfigError(
                    stack.source,
                    f"edit.stop_first.{name}",
                    f"{name!r} is in [edit.overlap] too",
                    "Say one: a port it shares (overlap), or why it stops first.",
                )


def _with_watcher(stack: Stack) -> Stack:
    """The stack with the edit loop's watcher as a service of its own (the outermost stack), and
    each service of [edit.restart] run under devkit's launcher where the edit loop exists."""
    edit = spec_of(stack)
    if edit is None:
        return stack
    program = ProgramSpec(watcher_command(edit), {}, "", "", **PROGRAM)
    uses = (f"file:{RULES_ID}", f"file:{SCRIPT_ID}")
    watcher = ServiceSpec(WATCHER, (), (), (), (), uses, (), program, "", (), when_watching(edit))
    services = tuple(
        _launched(svc, edit) if svc.name in edit.restart else svc for svc in stack.services
    )
    return stack._replace(services=(*services, watcher))


# a service's program under the launcher: the host side's `launch`, under the host's python3
LAUNCHER = 'P=/usr/bin/python3; [ -x "$P" ] || P=python3; exec "$P" -I -S "$@"'


def _launched(svc: ServiceSpec, edit: EditSpec) -> ServiceSpec:
    """The service with its command run by the launcher (when the edit loop exists on the host:
    `when`), restarted when the host side changes."""
    prefix = (
        f"/bin/sh -c {shlex.quote(LAUNCHER)} sh "
        f"{{{{ path('{SCRIPT}') | q }}}} launch {svc.name} {{{{ path('{RULES}') | q }}}} -- "
    )
    if edit.when:
        off = "('false', '0', 'no', 'none', '')"
        prefix = (
            "{% set w %}"
            + edit.when
            + "{% endset %}{% if (w | trim | lower) not in "
            + off
            + " %}"
            + prefix
            + "{% endif %}"
        )
    program = svc.program._replace(command=prefix + svc.program.command)
    return svc._replace(program=program, uses=(*svc.uses, f"file:{SCRIPT_ID}"))


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


GROUP = Group(
    NAME,
    _parse_group,
    check=_check_group,
    finish=_with_watcher,
    schema=SCHEMA,
    doc="the edit loop: which paths of the checkout restart which service",
)


class DEdit(NamedTuple):
    checkout: str  # absolute, on the host
    python: str  # the dev venv's interpreter, absolute
    pythonpath: tuple[str, ...]  # relative to the checkout
    vscode: bool
    rules: dict[str, Any]  # what supervisor/edit.json holds


# the host's network namespace hands a closing listener's queued connections to another listener
# of its SO_REUSEPORT group (Linux >= 5.14) instead of resetting them: an overlapped restart's old
# process then refuses nothing when it stops listening
MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"


class EditFacts(NamedTuple):
    latency: dict[str, list[dict[str, Any]]]  # service -> its recent edit-to-serving times
    migrate: str = ""  # net.ipv4.tcp_migrate_req: "0", "1", or "" (no such setting)


def request(stack: Stack) -> dict[str, Any]:
    return {"latency": layout.EDIT_LATENCY, "migrate": MIGRATE} if spec_of(stack) else {}


def collect(req: Any, base: str) -> dict[str, Any]:  # runs on the host
    if not req.get("latency"):
        return {}
    out = {"migrate": (read(req["migrate"]) or "").strip()}
    try:
        out["latency"] = json.loads(read(os.path.join(base, req["latency"])) or "{}")
    except ValueError:
        pass
    return out


REMOTE = (collect,)


def parse(raw: Any) -> EditFacts:
    raw = raw if isinstance(raw, dict) else {}
    data = raw.get("latency")
    rows = {
        str(k): [r for r in v if isinstance(r, dict)]
        for k, v in (data if isinstance(data, dict) else {}).items()
        if isinstance(v, list)
    }
    return EditFacts(rows, str(raw.get("migrate") or ""))


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
    e = spec_of(b.stack)
    r = b.render.text
    if e is None or (e.when and not enabled(r(e.when, "edit.when"))):
        return None
    src, home = b.stack.source, b.facts.host.home
    checkout = _absolute(r(e.checkout, "edit.checkout"), home, "edit.checkout", src)
    python = _absolute(r(e.python, "edit.python"), home, "edit.python", src)
    programs = {s.name: s.program.priority for s in b.stack.services}
    order = sorted((n for n in e.restart if n in programs), key=lambda n: programs[n])
    overlap = {}
    for n in order:
        port = r(e.overlap[n], f"edit.overlap.{n}").strip() if n in e.overlap else ""
        if port and not port.isdigit():
            raise ConfigError(src, f"edit.overlap.{n}", f"port {port!r} is not a number")
        if port:
            overlap[n] = int(port)
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
        "overlap": overlap,
        "stop_first": {n: e.stop_first[n] for n in order if n in e.stop_first},
        "warm": [n for n in order if n in e.warm and n in overlap],
        "stopwait": {s.name: s.program.stopwaitsecs for s in b.stack.services if s.name in order},
    }
    login = b.render.login
    files: list[DFile] = b.built["files"]
    text = json.dumps(rules, indent=1) + "\n"
    files.append(DFile(RULES_ID, RULES, text, 0o640, login, ""))
    script = ship.edit_script()
    files.append(DFile(SCRIPT_ID, SCRIPT, script, 0o640, login, ""))
    return DEdit(checkout, python, e.pythonpath, e.vscode, rules)


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    """Its files are the files kind's, its watcher is a program; with services that overlap on
    a host whose network namespace resets a closing listener's queued connections, root sets
    net.ipv4.tcp_migrate_req (elsewhere a restart may refuse a request queued at that moment)."""
    e: DEdit | None = d.of(NAME)
    if e is None or not e.rules.get("overlap") or not d.is_root or f.of(NAME).migrate != "0":
        return []
    why = "a restart's old listener hands its queued connections to the new one"
    return [Op(NAME, "sysctl", "set", f"net.ipv4.tcp_migrate_req = 1 ({why})")]


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    conn.run(sh("echo 1 >", q(MIGRATE)), op.id)


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
refresh = no_refresh
check = no_check
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
