"""Directories under the base dir (the built-in layout and the stack's own), with mode and owner;
the base dir's stack marker; and, as root, a way through the base dir's closed parents for the
stack's other users (an ACL for that one user where the host has setfacl, else o+x), recorded in
the base dir so that `teardown --purge` puts every parent back as it was."""

from __future__ import annotations

import json
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
from devkit.provision.onhost.facts import read, stat_of
from devkit.provision.ssh.command import Command, cat, join, q, sh, write_text
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.spec import DIR, DirSpec, Group, Stack, concat, dir_specs

NAME = "dirs"


SCHEMA = s.list_of(s.table(DIR))


def _parse_group(value: Any, where: s.Where, dirs: tuple[Path, ...]) -> tuple[DirSpec, ...]:
    """[[dirs]]: the stack's own folders under the base dir (a service's are in its table)."""
    return dir_specs(SCHEMA([] if value is None else value, where))


GROUP = Group(
    NAME,
    _parse_group,
    merge=concat,
    schema=SCHEMA,
    doc="the stack's own folders under the base dir (a service's are in its table)",
)


def all_dirs(stack: Stack) -> list[DirSpec]:
    """The stack's folders and every service's."""
    return [*stack.group(NAME), *(d for svc in stack.services for d in svc.dirs)]


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
    granted: dict[str, dict[str, Any]] = {}  # parent -> what devkit changed on it (the record)
    setfacl: bool = False  # can the host grant one user a way through (ACLs)?
    # the base dir: absent, empty, devkit (its marker or origin record), other (someone else's
    # files), file (not a folder), unknown (cannot be listed)
    base: str = "absent"
    origin: str = ""  # its origin record (layout.ORIGIN): created, adopted, "" (none)


def request(stack: Stack) -> list[str]:
    return [p for p, _ in layout.BUILTIN_DIRS] + [d.path for d in all_dirs(stack)]


def collect(req: list[str], base: str) -> dict[str, Any]:  # runs on the host
    ancestors = {}
    d = os.path.dirname(base)
    while d not in ("/", ""):
        ancestors[d] = stat_of(d)
        d = os.path.dirname(d)
    try:
        granted = json.loads(read(os.path.join(base, "state/permissions.json")) or "{}")
    except ValueError:
        granted = {}
    return {
        "stats": {p: stat_of(os.path.join(base, p)) for p in req},
        "marker": read(os.path.join(base, ".devkit-stack")),
        "ancestors": ancestors,
        "granted": granted,
        "setfacl": any(os.access(f"{d}/setfacl", os.X_OK) for d in ("/usr/bin", "/bin")),
        "base": base_state(base),
        "origin": (read(os.path.join(base, ".devkit-origin")) or "").strip(),
    }


def base_state(base: str) -> str:  # runs on the host
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return "file" if os.path.islink(base) else "absent"
    except NotADirectoryError:
        return "file"
    except OSError:
        return "unknown"
    if ".devkit-stack" in names or ".devkit-origin" in names:
        return "devkit"
    return "other" if names else "empty"


def _stat(raw: Any) -> Stat | None:
    return None if raw is None else Stat(str(raw["mode"]), str(raw["owner"]))


REMOTE = (collect, base_state)


def parse(raw: Any) -> DirFacts:
    return DirFacts(
        {p: _stat(s) for p, s in (raw.get("stats") or {}).items()},
        raw.get("marker"),
        {p: _stat(s) for p, s in (raw.get("ancestors") or {}).items()},
        dict(raw.get("granted") or {}),
        bool(raw.get("setfacl")),
        str(raw.get("base") or "absent"),
        str(raw.get("origin") or ""),
    )


def desired(b: Build) -> tuple[DDir, ...]:
    out = [DDir(p, mode, b.render.login) for p, mode in layout.BUILTIN_DIRS]
    out += [
        DDir(d.path, d.mode, b.render.who(d.owner, f"dirs {d.path} owner"))
        for d in all_dirs(b.stack)
    ]
    return tuple(out)


def marker(d: Desired) -> str:
    """What the base dir's marker holds: the stack's name, and the folder of a stack that is not
    one of devkit's own (so that `devkit status` can find and load it)."""
    return f"{d.stack}\n" + (f"{d.stack_dir}\n" if d.stack_dir else "")


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
    if changes or (have.marker or "") != marker(d):
        detail = ", ".join(f"{a} {dd.path}" for dd, a in changes) or "mark the base dir"
        action = "create" if have.marker is None else "update"
        ops.append(Op(NAME, "dirs", action, detail, tuple(changes)))
    ops += _traverse(d, have)
    return ops


class Grant(NamedTuple):
    path: str
    users: tuple[str, ...]  # who needs a way through
    acl: bool  # True: setfacl u:USER:x; False: chmod o+x
    mode: str  # the mode it had before


def _traverse(d: Desired, have: DirFacts) -> list[Op]:
    owners = {dd.owner for dd in d.of(NAME)} | {df.owner for df in d.of("files")}
    others = tuple(sorted(owners - {d.user}))
    if not d.is_root or not others:
        return []
    grants = []
    for p, st in sorted(have.ancestors.items()):
        done = have.granted.get(p, {})
        if st is None or int(st.mode, 8) & 0o001 or set(others) <= set(done.get("users", ())):
            continue
        grants.append(Grant(p, others, have.setfacl, done.get("mode", st.mode)))
    if not grants:
        return []
    how = "an ACL" if have.setfacl else "o+x"
    detail = f"{how} on {', '.join(g.path for g in grants)} so {', '.join(others)} can reach the base dir"
    return [Op(NAME, "traverse", "grant", detail, tuple(grants))]


def not_ours(have: DirFacts) -> bool:
    """Does the base dir hold what devkit must not take: someone else's files, or a file?"""
    return have.base in ("other", "file")


def claim(base: str) -> Command:
    """Make the base dir, recording that devkit created it, or record that devkit took the empty
    folder that was there; refuse (exit 3) a folder with files that are not devkit's."""
    b, origin = q(base), cat(q(base), "/", layout.ORIGIN)
    mine = sh("[ -e", cat(q(base), "/", layout.STACK_MARKER), "] || [ -e", origin, "]")
    return sh(
        "if [ ! -e", b, "] && [ ! -L", b, "]; then mkdir -p --", b, "&&",
        write_text(f"{base}/{layout.ORIGIN}", layout.CREATED), ";",
        "elif", mine, "; then :;",
        'elif [ -d', b, '] && [ -z "$(ls -A --', b, ')" ]; then',
        write_text(f"{base}/{layout.ORIGIN}", layout.ADOPTED), ";",
        "else echo", q(f"{base} holds files that are not devkit's"), ">&2; exit 3; fi",
    )  # fmt: skip


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    d = ctx.d
    if op.id == "traverse":
        _grant(conn, op, ctx)
        return
    cmds = [claim(d.layout.base)]
    for dd, _action in op.item:
        path = q(d.layout.path(dd.path))
        cmds.append(sh("mkdir", "-p", "--", path, "&&", "chmod", f"{dd.mode:04o}", path))
        if dd.owner != d.user:
            cmds.append(sh("chown", "--", q(dd.owner + ":"), path))
    cmds.append(write_text(d.layout.path(layout.STACK_MARKER), marker(d).rstrip("\n")))
    conn.run(join(cmds), op.id)


def _grant(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    record = dict(ctx.f.of(NAME).granted)
    for g in op.item:
        if g.acl:
            cmds = [sh("setfacl", "-m", q(f"u:{u}:x"), "--", q(g.path)) for u in g.users]
        else:
            cmds = [sh("chmod", "o+x", "--", q(g.path))]
        conn.run(join(cmds), op.id)
        record[g.path] = {"users": list(g.users), "acl": g.acl, "mode": g.mode}
        # recorded after each change, so a failure later still leaves it to be undone
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        conn.put(ctx.d.layout.path(layout.PERMISSIONS), data, 0o600, op.id)


def restore(granted: dict[str, dict[str, Any]]) -> list[Any]:
    """The commands that undo what the record says devkit changed (teardown --purge)."""
    out = []
    for path, g in sorted(granted.items()):
        if g.get("acl"):
            out += [sh("setfacl", "-x", q(f"u:{u}"), "--", q(path)) for u in g.get("users", ())]
        else:
            out.append(sh("chmod", q(str(g.get("mode", "0700"))), "--", q(path)))
    return out


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
refresh = no_refresh
check = no_check
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
