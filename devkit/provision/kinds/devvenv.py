"""The dev venv of a checkout: built from the checkout's own pins (requirements.txt, with the versions
of its lock as constraints, and the stack's known fixes for that release line in place of the
lock's), with the interpreter its pants.toml asks for, where the repository's own wrappers look for
it (Backend.AI's `./py`: dist/export/python/virtualenvs/python-default/<version>). Rebuilt when the
pins, the interpreter or the fixes change; a venv whose interpreter no longer starts is rebuilt."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, NamedTuple

from devkit.provision.kinds import checkout
from devkit.provision.kinds.base import (
    LATER,
    ApplyContext,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
    no_diff,
    no_finish,
    no_notes,
    no_steps,
)
from devkit.provision.onhost.facts import read
from devkit.provision.ssh.command import as_user, join, q, sh, write_text
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack.spec import Stack

NAME = "devvenv"
SPEC = ".devkit-spec"

# runs on the host with the venv's interpreter: the lock's pins as constraints, fixes instead of theirs
PINS = r"""
import json, re, sys
lock, out, fixes = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(lock, encoding="utf-8").read()
pins = {}
if text.lstrip().startswith("//") or text.lstrip().startswith("{"):  # Pants' JSON lock
    data = json.loads("\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//")))
    for resolve in data.get("locked_resolves", []):
        for r in resolve.get("locked_requirements", []):
            pins[r["project_name"]] = r["version"]
else:  # uv's TOML lock
    import tomllib
    for p in tomllib.loads(text).get("package", []):
        if "version" in p and "registry" in p.get("source", {}):
            pins[p["name"]] = p["version"]
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
fixed = {norm(re.split(r"[=<>!~ ]", f, 1)[0]) for f in fixes}
lines = [f"{n}=={v}" for n, v in sorted(pins.items()) if norm(n) not in fixed] + list(fixes)
open(out, "w", encoding="utf-8").write("\n".join(lines) + "\n")
print(len(lines))
"""


class DDevVenv(NamedTuple):
    checkout: str  # the checkout's absolute path
    path: str  # the venv's absolute path
    python: str  # the interpreter it is made with (/usr/bin/python3.11)
    requirements: str  # relative to the checkout
    lock: str
    fixes: tuple[str, ...]
    spec: str  # pins, interpreter and fixes: what the venv's spec file must hold


STATE = "state/devvenv.json"  # where devkit last built it


def request(stack: Stack) -> dict[str, Any]:
    return {"state": STATE}


def collect(req: dict[str, Any], base: str) -> dict[str, Any]:  # runs on the host
    """The spec of the dev venv at `req["path"]` (else where devkit last built it), when it is
    whole: its interpreter's link leads to an interpreter and its pip is there. Looked at, not
    started: starting it and importing pip took more than the rest of a no-op's facts."""
    import glob

    path = req.get("path")
    if not path:
        try:
            path = json.loads(read(os.path.join(base, req["state"])) or "{}").get("path")
        except ValueError:
            path = None
    if not path:
        return {}
    spec = read(os.path.join(path, ".devkit-spec"))
    python = os.path.join(path, "bin", "python")
    pip = glob.glob(os.path.join(glob.escape(path), "lib", "python3*", "site-packages", "pip"))
    if not (os.path.isfile(python) and os.access(python, os.X_OK) and pip):
        spec = None
    return {"spec": (spec or "").strip(), "path": path}


REMOTE = (collect,)


class VenvFacts(NamedTuple):
    path: str  # where it was looked for
    spec: str  # "" when absent or broken


def parse(raw: Any) -> VenvFacts:
    raw = raw or {}
    return VenvFacts(str(raw.get("path") or ""), str(raw.get("spec") or ""))


def desired(b: Build) -> DDevVenv | None:
    spec, code = checkout.spec_of(b.stack), b.code
    want = b.built.get(checkout.NAME)
    if spec is None or want is None or not spec.venv or not code.python:
        return None  # no checkout, or one whose interpreter is not known yet
    r = b.render.text
    minor = ".".join(code.python.split(".")[:2])
    rel = r(spec.venv, "checkout.venv")
    fixes = tuple(x for x in (r(f, "checkout.fixes") for f in spec.fixes) if x)
    python = f"/usr/bin/python{minor}"
    digest = hashlib.sha256("\0".join([code.pins, python, *fixes]).encode()).hexdigest()[:16]
    return DDevVenv(
        want.path, f"{want.path}/{rel}", python, spec.requirements, spec.lock, fixes, digest
    )


def refresh(conn: Connection, d: Desired, f: Facts, ask: Any) -> Facts:
    """Look at the venv's own path, known once the stack is rendered."""
    want: DDevVenv | None = d.of(NAME)
    if want is None or f.of(NAME).path == want.path:
        return f
    return f._replace(kinds={**f.kinds, NAME: parse(ask(NAME, {"path": want.path}))})


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    want: DDevVenv | None = d.of(NAME)
    if want is None or f.of(NAME).spec == want.spec:
        return []
    action = "update" if f.of(NAME).spec else "create"
    detail = f"{want.path} from {want.requirements} and {want.lock}"
    return [Op(NAME, "devvenv", action, detail, want)]


def check(conn: Connection, ops: list[Op], ctx: ApplyContext) -> None:
    for op in ops:
        if op.kind == NAME:
            co: checkout.DCheckout = ctx.d.of(checkout.NAME)
            checkout.need_interpreter(conn.name, op.id, co.python, ctx.f.host, co.version)


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    v: DDevVenv = op.item
    d = ctx.d
    cons = f"{v.path}/devkit-constraints.txt"
    cmd = join(
        [
            sh("cd", q(v.checkout)),
            sh(q(v.python), "-m venv --clear", q(v.path)),
            sh(q(v.path + "/bin/python"), "-I -c", q(PINS), q(v.lock), q(cons), *map(q, v.fixes)),
            sh(
                q(v.path + "/bin/python"),
                "-m pip install -q --disable-pip-version-check",
                "-r",
                q(v.requirements),
                "-c",
                q(cons),
            ),
            write_text(f"{v.path}/{SPEC}", v.spec),
        ]
    )
    conn.run(as_user(cmd, "", d.user, d.is_root), op.id)
    conn.put(d.layout.path(STATE), json.dumps({"path": v.path}).encode() + b"\n", 0o640, op.id)


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
