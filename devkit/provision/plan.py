"""The plan: pure. Facts + desired state -> ordered ops, each with its predicted change.

An op that would change nothing is not in the plan, so a converged host plans nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from devkit.provision.desired import Desired
from devkit.provision.facts import Facts

UP_STATES = ("RUNNING", "STARTING")


class Op(NamedTuple):
    id: str  # stable, from the stack: "file:redis.conf", "program:redis", "init:postgres.initdb"
    action: str  # install, create, update, chmod, chown, run, start, restart, remove
    detail: str  # one line for people
    data: Any = None  # what apply needs


def _mode(m: int) -> str:
    return f"{m:04o}"


def plan(d: Desired, f: Facts, stack_name: str) -> list[Op]:
    ops: list[Op] = []
    missing = [p for p in d.packages if not f.packages.get(p)]
    if missing:
        ops.append(Op("packages", "install", " ".join(missing), tuple(missing)))
    dir_changes = []
    for dd in d.dirs:
        have = f.dirs.get(dd.path)
        if have is None:
            dir_changes.append((dd, "create"))
        elif have["owner"] != dd.owner:
            dir_changes.append((dd, "chown"))
        elif have["mode"] != _mode(dd.mode):
            dir_changes.append((dd, "chmod"))
    if dir_changes or (f.base_marker or "").strip() != stack_name:
        detail = ", ".join(f"{a} {dd.path}" for dd, a in dir_changes) or "mark the base dir"
        ops.append(
            Op("dirs", "create" if f.base_marker is None else "update", detail, tuple(dir_changes))
        )
    others = {dd.owner for dd in d.dirs} | {df.owner for df in d.files}
    if d.is_root and others - {d.user}:
        closed = [
            p for p, st in sorted(f.ancestors.items()) if st and not int(st["mode"], 8) & 0o001
        ]
        if closed:
            who = ", ".join(sorted(others - {d.user}))
            ops.append(
                Op(
                    "traverse",
                    "chmod",
                    f"o+x on {', '.join(closed)} so {who} can reach the base dir",
                    tuple(closed),
                )
            )
    for name in sorted(d.new_secrets):
        ops.append(Op(f"secret:{name}", "create", "generate (value not shown)", name))
    for v in d.venvs:
        have = (f.venvs.get(v.name) or "").strip()
        if have != v.spec:
            pins = " ".join(v.requirements)
            ops.append(Op(f"venv:{v.name}", "update" if have else "create", pins, v))
    changed_files = set()
    for df in d.files:
        have = f.files.get(df.dest)
        digest = hashlib.sha256(df.content.encode()).hexdigest()
        if have is None:
            action = "create"
        elif have.get("sha256") != digest:
            action = "update"
        elif have["owner"] != df.owner:
            action = "chown"
        elif have["mode"] != _mode(df.mode):
            action = "chmod"
        else:
            continue
        changed_files.add(df.id)
        ops.append(Op(f"file:{df.id}", action, df.dest, df))
    done = set(f.markers)
    for i in d.inits:
        if i.stage == "prestart" and i.id not in done:
            ops.append(Op(f"init:{i.id}", "run", i.run.splitlines()[0][:80] if i.run else "", i))
    ops += _programs(d, f, changed_files)
    for i in d.inits:
        if i.stage == "poststart" and i.id not in done:
            ops.append(Op(f"init:{i.id}", "run", i.run.splitlines()[0][:80] if i.run else "", i))
    return ops


def _programs(d: Desired, f: Facts, changed_files: set[str]) -> list[Op]:
    sv = f.supervisor or {}
    if not sv.get("running"):
        names = " ".join(p.name for p in d.programs)
        return [Op("supervisord", "start", f"start supervisord with {names}", tuple(d.programs))]
    ops = []
    if "supervisord.conf" in changed_files:
        ops.append(
            Op(
                "supervisord",
                "reload",
                "supervisord.conf changed: restart supervisord",
                tuple(d.programs),
            )
        )
        return ops
    running = sv.get("programs", {})
    wanted = {p.name for p in d.programs}
    for name in sorted(set(running) | {x[:-5] for x in f.program_files if x.endswith(".conf")}):
        if name not in wanted:
            ops.append(Op(f"program:{name}", "remove", "no longer in the stack", name))
    for p in d.programs:
        state = running.get(p.name, {}).get("state")
        if f"program:{p.name}" in changed_files or state is None:
            ops.append(Op(f"program:{p.name}", "update", "config changed: reload and restart", p))
        elif f.applied.get(p.name) != p.hash:
            ops.append(
                Op(f"program:{p.name}", "restart", "a file, secret or venv it uses changed", p)
            )
        elif state not in UP_STATES:
            ops.append(Op(f"program:{p.name}", "start", f"is {state}", p))
    return ops
