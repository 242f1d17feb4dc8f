"""Files under the base dir rendered from the stack's Jinja2 templates (and the ones devkit
generates: supervisord's configs, the services record), written atomically with mode and owner."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
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
    no_finish,
    no_notes,
    no_refresh,
    no_steps,
)
from devkit.provision.onhost.facts import file_fact
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.spec import FILE, FileSpec, Group, Stack, concat, file_specs

NAME = "files"


SCHEMA = s.list_of(s.table(FILE))


def _parse_group(value: Any, where: s.Where, dirs: tuple[Path, ...]) -> tuple[FileSpec, ...]:
    """[[files]]: the stack's own files (a service's are in its table)."""
    return file_specs(SCHEMA([] if value is None else value, where), where, dirs)


def all_files(stack: Stack) -> list[FileSpec]:
    """The stack's files and every service's."""
    return [*stack.group(NAME), *(f for svc in stack.services for f in svc.files)]


def _check_group(stack: Stack) -> None:
    ids = [f.id for f in all_files(stack)]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(
            stack.source,
            "files",
            f"duplicate file ids: {', '.join(sorted(dup))}",
            "Give each file a unique `id`.",
        )


GROUP = Group(
    NAME,
    _parse_group,
    merge=concat,
    check=_check_group,
    ref="file",
    names=lambda stack: {f.id for f in all_files(stack)},
    schema=SCHEMA,
    doc="the stack's own files, rendered from templates (a service's are in its table)",
)


class DFile(NamedTuple):
    id: str
    dest: str  # relative to the base dir
    content: str
    mode: int
    owner: str
    service: str  # the service it belongs to ("" for the stack's own)


class FileStat(NamedTuple):
    mode: str
    owner: str
    sha256: str


def request(stack: Stack) -> list[str]:
    generated = [
        layout.SUPERVISOR_CONF,
        layout.START_ALL,
        *(layout.program_conf_rel(s.name) for s in stack.services),
        layout.SERVICES,
        layout.PROBES,
        # the edit kind's, when the stack has an edit loop (a file that is not there is None)
        layout.EDIT_RULES,
        layout.EDIT_SCRIPT,
    ]
    return [f.dest for f in all_files(stack)] + generated


def collect(req: list[str], base: str) -> dict[str, Any]:  # runs on the host
    return {p: file_fact(os.path.join(base, p)) for p in req}


REMOTE = (collect,)


def parse(raw: Any) -> dict[str, FileStat | None]:
    return {
        str(p): None if s is None else FileStat(str(s["mode"]), str(s["owner"]), str(s["sha256"]))
        for p, s in (raw or {}).items()
    }


def desired(b: Build) -> list[DFile]:
    """The stack's files; kinds built later (programs) add the files they generate."""
    owner_of = {f.id: s.name for s in b.stack.services for f in s.files}
    probes = json.dumps({"docker": b.facts.host.docker}) + "\n"
    return [DFile("probes.json", layout.PROBES, probes, 0o640, b.render.login, "")] + [
        DFile(
            f.id,
            f.dest,
            b.render.file(f.template),
            f.mode,
            b.render.who(f.owner, f"files {f.id} owner"),
            owner_of.get(f.id, ""),
        )
        for f in all_files(b.stack)
    ]


def digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    have: dict[str, FileStat | None] = f.of(NAME)
    ops = []
    for df in d.of(NAME):
        st = have.get(df.dest)
        if st is None:
            action = "create"
        elif st.sha256 != digest(df.content):
            action = "update"
        elif st.owner != df.owner:
            action = "chown"
        elif st.mode != f"{df.mode:04o}":
            action = "chmod"
        else:
            continue
        state.changed_files.add(df.id)
        ops.append(Op(NAME, f"file:{df.id}", action, df.dest, df))
    return ops


def diff(conn: Connection, op: Op, d: Desired) -> str:
    """The unified diff a dry run shows (the old text read from the host)."""
    if op.action not in ("create", "update"):
        return ""
    df: DFile = op.item
    old = ""
    if op.action == "update":
        old = (conn.get(d.layout.path(df.dest)) or b"").decode("utf-8", "replace")
    lines = difflib.unified_diff(
        old.splitlines(True), df.content.splitlines(True), f"a/{df.dest}", f"b/{df.dest}"
    )
    return "".join(lines)


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    df: DFile = op.item
    owner = df.owner if df.owner != ctx.d.user else ""
    conn.put(ctx.d.layout.path(df.dest), df.content.encode(), df.mode, op.id, owner)


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
refresh = no_refresh
check = no_check
finish = no_finish
steps = no_steps
notes = no_notes
