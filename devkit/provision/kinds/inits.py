"""One-time init steps of a service (initdb, schema, fixtures): run before the service starts
(prestart) or once it is healthy (poststart), each verified, then marked done on the host. A step
that uses files runs again when they change. The programs kind schedules them in its bring-up."""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple

from devkit.provision.kinds.base import (
    LATER,
    ApplyContext,
    Ask,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
    no_check,
    no_diff,
    no_finish,
    no_notes,
    truthy,
)
from devkit.provision.onhost.facts import read
from devkit.provision.ssh.command import as_user, join, q, sh, write_text
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.spec import Stack

NAME = "inits"


class DInit(NamedTuple):
    id: str  # "<service>.<step>"
    service: str
    stage: str  # "prestart" or "poststart"
    run: str  # shell, rendered from the stack
    verify: str
    unless: str
    user: str
    hash: str = ""  # of the files and secrets it uses: the marker holds it; a change runs it again
    recheck: bool = False  # verified on every run: when that fails, it runs again


def request(stack: Stack) -> dict[str, str]:
    return {i.id: layout.marker_rel(i.id) for s in stack.services for i in s.init}


def collect(req: dict[str, str], base: str) -> dict[str, Any]:  # runs on the host
    return {step: read(os.path.join(base, rel)) for step, rel in req.items()}


REMOTE = (collect,)


def parse(raw: Any) -> dict[str, str]:
    """Step id -> what its marker holds (steps never run are absent)."""
    return {str(k): str(v).strip() for k, v in (raw or {}).items() if v is not None}


def desired(b: Build) -> tuple[DInit, ...]:
    files = {f.id: f for f in b.built["files"]}
    out = []
    for s in b.stack.services:
        for i in s.init:
            at = f"services.{s.name}.init.{i.id}"
            if i.when and not truthy(b.render.text(i.when, f"{at}.when")):
                continue
            h = ""
            if i.uses:
                dh = hashlib.sha256()
                for ref in i.uses:
                    kind, _, name = ref.rpartition(":")
                    value = b.secrets[name] if kind == "secret" else files[name].content
                    dh.update(f"\0{ref}\0{value}".encode())
                h = dh.hexdigest()[:16]
            r = b.render.text
            out.append(
                DInit(
                    i.id,
                    s.name,
                    i.stage,
                    r(i.run, f"{at}.run"),
                    r(i.verify, f"{at}.verify"),
                    r(i.unless, f"{at}.unless"),
                    b.render.who(i.user, f"{at}.user"),
                    h,
                    i.recheck,
                )
            )
    return tuple(out)


def pending(i: DInit, f: Facts) -> bool:
    """Not run yet, or run against files or secrets that have changed since, or (a step that is
    rechecked) its verify failed on this run (the marker is then dropped from the facts)."""
    have = f.of(NAME).get(i.id)
    return have is None or (bool(i.hash) and have != i.hash)


def refresh(conn: Connection, d: Desired, f: Facts, ask: Ask) -> Facts:
    """Verify the rechecked steps marked done, all at once on the host: a database dropped behind
    devkit's back is then created again, instead of passing as converged on its marker."""
    steps = [i for i in d.of(NAME) if i.recheck and not pending(i, f)]
    if not steps:
        return f
    checks = [
        sh(
            "{",
            as_user(sh(i.verify), i.user, d.user, d.is_root),
            ">/dev/null 2>&1 && echo",
            q("ok " + i.id),
            "|| echo",
            q("bad " + i.id),
            "; } &",
        )
        for i in steps
    ]
    out = conn.run(join([sh("cd", q(d.layout.base)), sh(*checks, "wait")]), "recheck", check=False)
    bad = {line[4:] for line in out.stdout.splitlines() if line.startswith("bad ")}
    if not bad:
        return f
    markers = {k: v for k, v in f.of(NAME).items() if k not in bad}
    return f._replace(kinds={**f.kinds, NAME: markers})


def steps(d: Desired, f: Facts, service: str, stage: str) -> list[Op]:
    """The pending steps of one service at one stage, in the stack's order."""
    return [
        Op(NAME, f"init:{i.id}", "run", i.run.strip().splitlines()[0][:80] if i.run else "", i)
        for i in d.of(NAME)
        if i.service == service and i.stage == stage and pending(i, f)
    ]


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    return []  # scheduled by the programs kind, around each service's start


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    i: DInit = op.item
    d = ctx.d

    def wrap(text: str) -> Any:
        return as_user(sh(text), i.user, d.user, d.is_root)

    body = wrap(i.run)
    if i.unless:
        body = sh("{", wrap(i.unless), ">/dev/null 2>&1 ||", body, "; }")
    verify = sh(
        "{", wrap(i.verify), "|| {", "echo", q("verify failed: " + i.verify), ">&2; exit 97; }; }"
    )
    cmd = join(
        [sh("cd", q(d.layout.base)), body, verify, write_text(d.layout.marker(i.id), i.hash)]
    )
    conn.run(cmd.labelled(i.run), op.id)


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
check = no_check
finish = no_finish
diff = no_diff
notes = no_notes
