"""One-time init steps of a service (initdb, schema, fixtures): run before the service starts
(prestart) or once it is healthy (poststart), each verified, then marked done on the host. A step
that uses files runs again when they change. The programs kind schedules them in its bring-up."""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple

from devkit.errors import RemoteError
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
    no_notes,
    truthy,
)
from devkit.provision.onhost.facts import read, run
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


RECHECK = "@recheck"  # in the request (a provisioning run's first look): the recorded rechecks


class InitFacts(NamedTuple):
    markers: dict[str, str]  # step id -> what its marker holds (steps never run are absent)
    # the rechecks as last recorded (layout.RECHECK), run with the facts: their script's sha256
    # and the steps whose verify failed ({} when not asked or none is recorded)
    recheck: dict[str, Any]


def request(stack: Stack) -> dict[str, str]:
    return {i.id: layout.marker_rel(i.id) for s in stack.services for i in s.init}


def collect(req: dict[str, str], base: str) -> dict[str, Any]:  # runs on the host
    out: dict[str, Any] = {
        step: read(os.path.join(base, rel)) for step, rel in req.items() if step != "@recheck"
    }
    script = read(os.path.join(base, req["@recheck"])) if req.get("@recheck") else None
    if script:
        import hashlib as _hashlib

        rc, output = run(["sh", "-c", script], timeout=60)
        out["@recheck"] = {
            "sha": _hashlib.sha256(script.encode()).hexdigest(),
            "bad": [ln[4:] for ln in output.splitlines() if ln.startswith("bad ")],
            "rc": rc,
        }
    return out


REMOTE = (collect,)


def parse(raw: Any) -> InitFacts:
    raw = raw or {}
    markers = {str(k): str(v).strip() for k, v in raw.items() if v is not None and k != RECHECK}
    rec = raw.get(RECHECK)
    return InitFacts(markers, dict(rec) if isinstance(rec, dict) and rec.get("rc") == 0 else {})


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
    have = f.of(NAME).markers.get(i.id)
    return have is None or (bool(i.hash) and have != i.hash)


def refresh(conn: Connection, d: Desired, f: Facts, ask: Ask) -> Facts:
    """Verify the rechecked steps marked done, all at once on the host: a database dropped behind
    devkit's back is then created again, instead of passing as converged on its marker. The
    script that does it is recorded on the host (layout.RECHECK) and run with a provisioning
    run's first look: when it is still the one this run renders, its results are used as they
    are (no round trip of its own)."""
    steps = [i for i in d.of(NAME) if i.recheck and not pending(i, f)]
    if not steps:
        return f
    script = str(recheck_script(d, steps))
    have: InitFacts = f.of(NAME)
    if have.recheck.get("sha") == hashlib.sha256(script.encode()).hexdigest():
        bad = set(have.recheck.get("bad") or ())
    else:
        out = conn.run(sh(script).labelled("recheck"), "recheck", check=False)
        bad = {line[4:] for line in out.stdout.splitlines() if line.startswith("bad ")}
    if not bad:
        return f
    markers = {k: v for k, v in have.markers.items() if k not in bad}
    return f._replace(kinds={**f.kinds, NAME: have._replace(markers=markers)})


def recheck_script(d: Desired, steps: list[DInit]) -> Any:
    """Each step's verify, all at once, from the base dir: a line `ok ID` or `bad ID` each."""
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
    return join([sh("cd", q(d.layout.base)), sh(*checks, "wait")])


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


def finish(conn: Connection, ctx: ApplyContext) -> None:
    """Record the rechecks of every rechecked step for the next run's first look (when they
    changed): on a converged host that look then verifies them."""
    steps = [i for i in ctx.d.of(NAME) if i.recheck]
    script = str(recheck_script(ctx.d, steps)) if steps else ""
    sha = hashlib.sha256(script.encode()).hexdigest() if script else ""
    if sha == ctx.f.of(NAME).recheck.get("sha", ""):
        return
    try:
        conn.put(ctx.d.layout.path(layout.RECHECK), script.encode(), 0o640, "recheck")
    except RemoteError:
        pass  # the connection is gone: the next run rechecks in a round trip of its own


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
check = no_check
diff = no_diff
notes = no_notes
