"""Python virtual environments under the base dir, with pinned requirements; rebuilt when their
spec (interpreter, requirements, constraints) changes. Wheels are fetched on this machine and
uploaded (hosts without PyPI), or installed from the host's own index."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from devkit import schema as sch
from devkit.errors import RemoteError
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
    no_refresh,
    no_steps,
    truthy,
)
from devkit.provision.onhost.facts import read, run
from devkit.provision.ssh.command import cat, join, q, sh, write_text
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.spec import NAME_RULE, SAFE_NAME, WHEELS, Group, Stack, concat
from devkit.provision.transfer import wheels

NAME = "venvs"
SUPERVISOR = "supervisor"


class VenvSpec(NamedTuple):
    """[venvs.NAME]: a venv under the base dir."""

    name: str
    python: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    wheels: str  # "auto", "controller", "remote" or "" (the stack's default)
    python_version: str = ""  # template: the interpreter must be this version (prefix, "3.11")
    python_hint: str = ""  # template: what to install when it is not
    check: str = ""  # a module the venv must be able to find (else it is rebuilt)
    when: str = ""  # template: the venv exists only when this renders truthy ("" = always)


VENV = sch.Table(
    sch.Key("python", sch.string(), "", "template: its interpreter (default: the stack's)"),
    sch.Key("requirements", sch.strings(), (), "templates: pip requirements"),
    sch.Key("constraints", sch.strings(), (), "templates: pip constraints"),
    sch.Key("wheels", WHEELS, "", "where its wheels come from (default: the stack's `wheels`)"),
    sch.Key(
        "python_version",
        sch.string(),
        "",
        'template: the interpreter must be this version (a prefix, "3.11")',
    ),
    sch.Key("python_hint", sch.string(), "", "template: what to install when it is not"),
    sch.Key(
        "check",
        sch.string(r"[A-Za-z_][\w.]*", "a module name"),
        "",
        "a module the venv must find, else it is made again",
    ),
    sch.Key("when", sch.string(), "", "template: the venv exists only when this renders truthy"),
)


SCHEMA = sch.mapping(sch.table(VENV), key=sch.string(SAFE_NAME, f"a venv's name: {NAME_RULE}"))


def _parse_group(value: Any, where: sch.Where, dirs: tuple[Path, ...]) -> tuple[VenvSpec, ...]:
    v = SCHEMA({} if value is None else value, where)
    return tuple(VenvSpec(k, **x) for k, x in v.items())


def specs(stack: Stack) -> tuple[VenvSpec, ...]:
    """The stack's [venvs]."""
    return stack.group(NAME)  # type: ignore[no-any-return]


GROUP = Group(
    NAME,
    _parse_group,
    merge=concat,
    ref="venv",
    names=lambda st: {v.name for v in specs(st)},
    schema=SCHEMA,
    doc="Python venvs under the base dir, with pinned requirements",
)


class DVenv(NamedTuple):
    name: str
    python: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    wheels: str  # "controller": fetched here and uploaded; "remote": the host's own pip; "auto"
    spec: str  # what the venv's .devkit-spec must contain; a mismatch reinstalls
    python_version: str = ""  # required interpreter version prefix ("3.11"), "" = any
    python_hint: str = ""  # what to install when the interpreter is missing or wrong


def request(stack: Stack) -> dict[str, dict[str, str]]:
    checks = {SUPERVISOR: "supervisor", **{v.name: v.check for v in specs(stack)}}
    return {
        n: {
            "spec": layout.venv_spec_rel(n),
            "python": layout.venv_rel(n) + "/bin/python",
            "check": m,
        }
        for n, m in checks.items()
    }


def collect(req: dict[str, dict[str, str]], base: str) -> dict[str, Any]:  # runs on the host
    """Each venv's spec, when its interpreter starts and finds its module (a venv whose Python
    was removed or upgraded under it counts as absent)."""
    import threading

    out: dict[str, Any] = {}

    def one(name: str, r: dict[str, str]) -> None:
        spec = read(os.path.join(base, r["spec"]))
        if spec is None:
            out[name] = None
            return
        probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 3)"
        rc, _ = run([os.path.join(base, r["python"]), "-I", "-c", probe, r["check"] or "sys"])
        out[name] = spec if rc == 0 else None

    threads = [threading.Thread(target=one, args=item) for item in req.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


REMOTE = (collect,)


def parse(raw: Any) -> dict[str, str]:
    return {str(k): str(v).strip() for k, v in (raw or {}).items() if v}


def spec_of(python: str, reqs: tuple[str, ...], cons: tuple[str, ...]) -> str:
    return hashlib.sha256("\0".join([python, *reqs, "--", *cons]).encode()).hexdigest()[:16]


def venv(
    name: str, python: str, reqs: tuple[str, ...], cons: tuple[str, ...], wheels: str, **more: str
) -> DVenv:
    return DVenv(name, python, reqs, cons, wheels, spec_of(python, reqs, cons), **more)


def _nonempty(lines: Iterable[str]) -> tuple[str, ...]:
    """The rendered lines, without those that render empty (a pin one release line needs only)."""
    return tuple(x for x in lines if x.strip())


def desired(b: Build) -> tuple[DVenv, ...]:
    s, r = b.stack, b.render.text
    out = [venv(SUPERVISOR, s.python, (s.supervisor,), (), s.wheels)]
    for v in specs(s):
        at = f"venvs.{v.name}"
        if v.when and not truthy(r(v.when, f"{at}.when")):
            continue
        out.append(
            venv(
                v.name,
                r(v.python, f"{at}.python") or s.python,
                _nonempty(r(x, f"{at}.requirements") for x in v.requirements),
                _nonempty(r(x, f"{at}.constraints") for x in v.constraints),
                v.wheels or s.wheels,
                python_version=r(v.python_version, f"{at}.python_version"),
                python_hint=r(v.python_hint, f"{at}.python_hint"),
            )
        )
    return tuple(out)


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    have: dict[str, str] = f.of(NAME)
    return [
        Op(
            NAME,
            f"venv:{v.name}",
            "update" if v.name in have else "create",
            " ".join(v.requirements),
            v,
        )
        for v in d.of(NAME)
        if have.get(v.name) != v.spec
    ]


def check(conn: Connection, ops: list[Op], ctx: ApplyContext) -> None:
    """Before anything changes: every venv to build has its interpreter, of the right version,
    with the venv module (unless this run installs python3-venv first)."""
    new: list[DVenv] = [op.item for op in ops if op.kind == NAME]
    installing = next((op.item for op in ops if op.kind == "packages"), ())
    checks = []
    for v in new:
        py = q(v.python)
        steps = [
            sh("[ -x", py, "] || {", "echo", q(f"{v.name}: {v.python} not found"), "; exit 3; }")
        ]
        if v.python_version:
            ver = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
            steps.append(
                sh(
                    cat("w=", q(v.python_version)),
                    ";",
                    "v=$(",
                    py,
                    "-I -c",
                    q(ver),
                    ");",
                    'case "$v" in "$w"|"$w".*) ;; *) echo',
                    q(f"{v.name}: {v.python} is Python"),
                    '"$v"; exit 3;; esac',
                )
            )
        if "python3-venv" not in installing:
            steps.append(
                sh(
                    py,
                    "-I -c 'import ensurepip' >/dev/null 2>&1 || {",
                    "echo",
                    q(f"{v.name}: {v.python} lacks the venv module (ensurepip)"),
                    "; exit 3; }",
                )
            )
        checks.append(join(steps))
    if not checks:
        return
    res = conn.run(join(checks), "python", check=False)
    if res.rc != 0:
        line = (res.stdout.strip().splitlines() or ["no suitable Python"])[0]
        v = next((x for x in new if line.startswith(x.name + ":")), new[0])
        need = f"; it needs Python {v.python_version}" if v.python_version else ""
        raise RemoteError(
            conn.name,
            "python",
            f"venv {line}{need}",
            hint=v.python_hint or "Install Python with its venv module on the host.",
        )


def _from_controller(v: DVenv, ctx: ApplyContext) -> bool:
    """Fetch the wheels here? Always for "controller", never for "remote"; for "auto" when this
    machine's Python is the host's (it can then build the few sdists into wheels too)."""
    if v.wheels != "auto":
        return v.wheels == "controller"
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    named = re.search(r"python(3\.\d+)$", v.python)  # /usr/bin/python3.13
    minor = named.group(1) if named else ".".join(ctx.f.host.python.split(".")[:2])
    return minor == here


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    v: DVenv = op.item
    lay = ctx.d.layout
    path = lay.venv(v.name)
    cons = f"{path}/devkit-constraints.txt"
    source: list[Any] = []
    if ctx.wheelhouse or _from_controller(v, ctx):
        local = wheels.download(
            v, ctx.f.host.python, ctx.f.host.machine, conn.name, op.id, ctx.wheelhouse
        )
        wheels.upload(conn, local, lay.path(layout.WHEELS), op.id)
        source = ["--no-index", "--find-links", q(lay.path(layout.WHEELS))]
    cmd = join(
        [
            # a venv that is absent or broken is made anew; a changed spec updates it in place
            sh(
                q(v.python), "-m", "venv", *(("--clear",) if op.action == "create" else ()), q(path)
            ),
            sh("printf", "'%s\\n'", *(q(c) for c in v.constraints), ">", q(cons)),
            sh(
                q(path + "/bin/python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *source,
                "-c",
                q(cons),
                *(q(x) for x in v.requirements),
            ),
            write_text(f"{path}/.devkit-spec", v.spec),
        ]
    )
    conn.run(cmd, op.id)


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
refresh = no_refresh
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
