"""The plan: pure. Facts + desired state -> ordered ops, each with its predicted change.

An op that would change nothing is not in the plan, so a converged host plans nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from devkit.provision.desired import Desired, DInit, DProgram
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
    ops += _bring_up(d, f, changed_files)
    return ops


def pending(i: DInit, f: Facts) -> bool:
    """Not run yet, or (for a step that uses files) run against files that have changed since."""
    have = (f.marker_hashes or {}).get(i.id)
    if have is None:
        return i.id not in set(f.markers or ())
    return bool(i.hash) and have != i.hash


def _init_op(i: DInit) -> Op:
    return Op(f"init:{i.id}", "run", i.run.strip().splitlines()[0][:80] if i.run else "", i)


def ordered(programs: tuple[DProgram, ...] | list[DProgram]) -> list[DProgram]:
    """Start order: priority, then the stack's order (sorted() is stable)."""
    return sorted(programs, key=lambda p: p.priority)


def _bring_up(d: Desired, f: Facts, changed_files: set[str]) -> list[Op]:
    """supervisord, then each service in start order: its prestart steps, the program, its
    poststart steps; so a service's init steps always run with the services before it healthy."""
    sv = f.supervisor or {}
    ops: list[Op] = []
    running: dict[str, dict[str, Any]] = sv.get("programs", {}) if sv.get("running") else {}
    fresh = not sv.get("running") or "supervisord.conf" in changed_files
    if not sv.get("running"):
        names = " ".join(p.name for p in ordered(d.programs))
        ops.append(Op("supervisord", "start", f"start supervisord for {names}", ()))
    elif "supervisord.conf" in changed_files:
        ops.append(Op("supervisord", "reload", "supervisord.conf changed: restart it", ()))
        running = {}
    else:
        wanted = {p.name for p in d.programs}
        listed = {x[:-5] for x in f.program_files if x.endswith(".conf")}
        for name in sorted(set(running) | listed):
            if name not in wanted:
                ops.append(Op(f"program:{name}", "remove", "no longer in the stack", name))
    for p in ordered(d.programs):
        pre = [i for i in d.inits if i.service == p.name and i.stage == "prestart"]
        post = [i for i in d.inits if i.service == p.name and i.stage == "poststart"]
        todo = [_init_op(i) for i in pre if pending(i, f)]
        ops += todo
        state = running.get(p.name, {}).get("state")
        if fresh:
            ops.append(Op(f"program:{p.name}", "start", "start it", p))
        elif f"program:{p.name}" in changed_files or state is None:
            ops.append(Op(f"program:{p.name}", "update", "config changed: reload and start", p))
        elif state not in UP_STATES:
            ops.append(Op(f"program:{p.name}", "start", f"is {state or 'not started'}", p))
        elif f.applied.get(p.name) != p.hash:
            ops.append(
                Op(f"program:{p.name}", "restart", "a file, secret or venv it uses changed", p)
            )
        elif todo:
            ops.append(Op(f"program:{p.name}", "restart", "its init steps ran again", p))
        ops += [_init_op(i) for i in post if pending(i, f)]
    return ops


def port_conflicts(d: Desired, f: Facts) -> list[str]:
    """Ports the stack needs that something else on the host already listens on."""
    sv = f.supervisor or {}
    up = {n for n, x in sv.get("programs", {}).items() if x.get("state") in UP_STATES}
    mine = set(f.provisioned_ports or ())
    listening = set(f.listening or ())
    out = []
    for p in d.ports:
        if p.port in listening and not (p.service in up and (p.service, p.port) in mine):
            out.append(f"port {p.port} ({p.service} {p.name})")
    return out
