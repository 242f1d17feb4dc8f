"""Directories under the base dir (the built-in layout and the stack's own), with mode and owner;
the base dir's stack marker; and, as root, the traverse bit other users need to reach it."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from devkit.provision import layout
from devkit.provision.command import join, q, sh, write_text
from devkit.provision.connection import Connection
from devkit.provision.remote import read, stat_of
from devkit.provision.resources.base import (
    ApplyContext,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
)
from devkit.provision.stack import all_dirs

NAME = "dirs"


class Stat(NamedTuple):
    mode: str  # "0755"
    owner: str


class DDir(NamedTuple):
    path: str  # relative to the base dir
    mode: int
    owner: str


class DirFacts(NamedTuple):
    stats: dict[str, Stat | None]  # relative path -> its stat, None when absent
    marker: str | None  # the base dir's stack marker (None: not devkit's, or absent)
    ancestors: dict[str, Stat | None]  # each parent of the base dir


def request(stack: Any) -> list[str]:
    return [p for p, _ in layout.BUILTIN_DIRS] + [d.path for d in all_dirs(stack)]


def collect(req: list[str], base: str) -> dict[str, Any]:  # runs on the host
    ancestors = {}
    d = os.path.dirname(base)
    while d not in ("/", ""):
        ancestors[d] = stat_of(d)
        d = os.path.dirname(d)
    return {
        "stats": {p: stat_of(os.path.join(base, p)) for p in req},
        "marker": read(os.path.join(base, ".devkit-stack")),
        "ancestors": ancestors,
    }


def _stat(raw: Any) -> Stat | None:
    return None if raw is None else Stat(str(raw["mode"]), str(raw["owner"]))


REMOTE = (collect,)


def parse(raw: Any) -> DirFacts:
    return DirFacts(
        {p: _stat(s) for p, s in (raw.get("stats") or {}).items()},
        raw.get("marker"),
        {p: _stat(s) for p, s in (raw.get("ancestors") or {}).items()},
    )


def desired(b: Build) -> tuple[DDir, ...]:
    out = [DDir(p, mode, b.render.login) for p, mode in layout.BUILTIN_DIRS]
    out += [
        DDir(d.path, d.mode, b.render.who(d.owner, f"dirs {d.path} owner"))
        for d in all_dirs(b.stack)
    ]
    return tuple(out)


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    have: DirFacts = f.of(NAME)
    changes: list[tuple[DDir, str]] = []
    for dd in d.of(NAME):
        st = have.stats.get(dd.path)
        if st is None:
            changes.append((dd, "create"))
        elif st.owner != dd.owner:
            changes.append((dd, "chown"))
        elif st.mode != f"{dd.mode:04o}":
            changes.append((dd, "chmod"))
    ops = []
    if changes or (have.marker or "").strip() != d.stack:
        detail = ", ".join(f"{a} {dd.path}" for dd, a in changes) or "mark the base dir"
        action = "create" if have.marker is None else "update"
        ops.append(Op(NAME, "dirs", action, detail, tuple(changes)))
    ops += _traverse(d, have)
    return ops


def _traverse(d: Desired, have: DirFacts) -> list[Op]:
    owners = {dd.owner for dd in d.of(NAME)} | {df.owner for df in d.of("files")}
    others = owners - {d.user}
    if not d.is_root or not others:
        return []
    closed = [p for p, st in sorted(have.ancestors.items()) if st and not int(st.mode, 8) & 0o001]
    if not closed:
        return []
    who = ", ".join(sorted(others))
    detail = f"o+x on {', '.join(closed)} so {who} can reach the base dir"
    return [Op(NAME, "traverse", "chmod", detail, tuple(closed))]


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    d = ctx.d
    if op.id == "traverse":
        conn.run(join(sh("chmod", "o+x", "--", q(p)) for p in op.item), op.id)
        return
    cmds = [sh("mkdir", "-p", "--", q(d.layout.base))]
    for dd, _action in op.item:
        path = q(d.layout.path(dd.path))
        cmds.append(sh("mkdir", "-p", "--", path, "&&", "chmod", f"{dd.mode:04o}", path))
        if dd.owner != d.user:
            cmds.append(sh("chown", "--", q(dd.owner + ":"), path))
    cmds.append(write_text(d.layout.path(layout.STACK_MARKER), d.stack))
    conn.run(join(cmds), op.id)
