"""A resource kind written only for the tests: a message of the day under the base dir, from a
`[motd]` group of its own in stack.toml. It is the whole of what adding a kind takes: this module
and a line in kinds/registry.py's KINDS (the test adds the line)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, NamedTuple

from devkit import schema as s
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
from devkit.provision.onhost.facts import file_fact
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack.spec import Group, Stack

NAME = "motd"
STAGE = LATER
DEST = "etc/motd"


class MotdSpec(NamedTuple):
    text: str  # template
    mode: int


MOTD = s.Table(
    s.Key("text", s.string(r".+", "a message"), doc="template: the message"),
    s.Key("mode", s.integer(), 0o644, "the file's mode"),
)
SCHEMA = s.table(MOTD)


def _parse_group(value: Any, where: s.Where, dirs: tuple[Path, ...]) -> MotdSpec | None:
    return None if value is None else MotdSpec(**SCHEMA(value, where))


GROUP = Group(NAME, _parse_group, schema=SCHEMA, doc="the host's message of the day")


def request(stack: Stack) -> str:
    return DEST


def collect(req: str, base: str) -> Any:  # runs on the host
    return file_fact(os.path.join(base, req))


REMOTE = (collect,)


def parse(raw: Any) -> str:
    return str((raw or {}).get("sha256") or "")


def desired(b: Build) -> str | None:
    spec: MotdSpec | None = b.stack.group(NAME)
    return None if spec is None else b.render.text(spec.text, "motd.text") + "\n"


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    text: str | None = d.of(NAME)
    if text is None or f.of(NAME) == hashlib.sha256(text.encode()).hexdigest():
        return []
    return [Op(NAME, "motd", "update" if f.of(NAME) else "create", DEST, text)]


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    conn.put(ctx.d.layout.path(DEST), op.item.encode(), 0o644, op.id)


refresh = no_refresh
check = no_check
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
