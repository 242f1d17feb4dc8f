"""The desired state of one host: the stack rendered with its variables and the host's facts.

Everything that can fail on bad input (undefined variables, bad templates) fails here, before any op
runs, so a bad template never leaves a half-provisioned host.
"""

from __future__ import annotations

import hashlib
import json
import secrets as random
from collections.abc import Callable
from typing import Any, NamedTuple

from devkit.provision import hosts, render, supervisor
from devkit.provision import stack as stk
from devkit.provision.facts import Facts

SERVICES = "state/services.json"


class DDir(NamedTuple):
    path: str  # relative to base
    mode: int
    owner: str


class DFile(NamedTuple):
    id: str
    dest: str  # relative to base
    content: str
    mode: int
    owner: str
    service: str


class DVenv(NamedTuple):
    name: str
    python: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    wheels: str  # "controller": fetched here and uploaded; "remote": the host's own pip index
    spec: str  # what the venv's .devkit-spec must contain; a mismatch reinstalls
    python_version: str = ""  # required interpreter version prefix ("3.11"), "" = any
    python_hint: str = ""  # what to install when the interpreter is missing or wrong


class DInit(NamedTuple):
    id: str
    service: str
    stage: str
    run: str
    verify: str
    unless: str
    user: str
    hash: str = ""  # of the files it uses: the marker holds it, and a change runs the step again


class DProgram(NamedTuple):
    name: str
    health: str
    hash: str  # of its config and of every file, secret and venv it depends on
    priority: int = 100  # start order (then stack order); stopped in reverse


class DPort(NamedTuple):
    service: str
    name: str
    port: int
    forward: bool


class Desired(NamedTuple):
    base: str
    user: str
    is_root: bool
    packages: tuple[str, ...]
    dirs: tuple[DDir, ...]
    files: tuple[DFile, ...]
    secrets: dict[str, str]
    new_secrets: frozenset[str]
    venvs: tuple[DVenv, ...]
    inits: tuple[DInit, ...]
    programs: tuple[DProgram, ...]
    ports: tuple[DPort, ...]
    notes: str = ""  # what to tell the user once the host is provisioned


def builtin_dirs() -> list[stk.DirSpec]:
    rel = (
        "etc",
        "data",
        "logs",
        "run",
        "state",
        "state/init",
        "venvs",
        "supervisor",
        "supervisor/programs",
    )
    return [stk.DirSpec(p, 0o755, "") for p in rel] + [stk.DirSpec("secrets", 0o700, "")]


def default_base(stack_name: str, target: hosts.Target) -> str:
    """~/.devkit/<stack>; sandboxes share this machine's filesystem, so theirs is per sandbox."""
    if target.base_dir:
        return target.base_dir.replace("{host}", target.name)
    return f"~/.devkit/{target.name}/{stack_name}" if target.sandbox else f"~/.devkit/{stack_name}"


def variables(stack: stk.Stack, target: hosts.Target, overrides: dict[str, Any]) -> dict[str, Any]:
    v = hosts.merge(stack.vars, target.vars, f"[tool.devkit.hosts.{target.name}.vars]")
    return hosts.merge(v, overrides, "--set")


def build(
    stack: stk.Stack,
    target: hosts.Target,
    overrides: dict[str, Any],
    facts: Facts,
    new_secret: Callable[[int], str] = random.token_hex,
) -> Desired:
    env = render.environment(stack.dir, *stack.search)
    base, is_root = facts.base, facts.uid == 0
    secret_values = {
        n: facts.secrets.get(n) or new_secret(max(8, length // 2))
        for n, length in stack.secrets.items()
    }
    engine: dict[str, Any] = {
        "base": base,
        "user": facts.user,
        "home": facts.home,
        "is_root": is_root,
        "host": target.name,
        "stack": stack.name,
        "python": stack.python,
        "path": lambda rel="": f"{base}/{rel}" if rel else base,
        "secret_path": lambda name: f"{base}/secrets/{name}",
        "secrets": secret_values,
        "host_docker": facts.docker or "",
    }
    ctx = {**render.resolve_vars(env, variables(stack, target, overrides), engine), **engine}

    def r(text: str, where: str) -> str:
        return render.render_string(env, text, ctx, f"{stack.source}: {where}")

    def who(text: str, where: str) -> str:
        return r(text, where) or facts.user

    services = [s for s in stack.services if _enabled(r(s.when, f"services.{s.name}.when"))]
    stack = stack._replace(services=tuple(services))
    dirs = [DDir(d.path, d.mode, facts.user) for d in builtin_dirs()]
    dirs += [
        DDir(d.path, d.mode, who(d.owner, f"dirs {d.path} owner")) for d in stk.all_dirs(stack)
    ]
    owner_of = {f.id: s.name for s in stack.services for f in s.files}
    files = [
        DFile(
            f.id,
            f.dest,
            render.render_file(env, f.template, ctx),
            f.mode,
            who(f.owner, f"files {f.id} owner"),
            owner_of.get(f.id, ""),
        )
        for f in stk.all_files(stack)
    ]
    venvs = [_venv(stack.python, "supervisor", (stack.supervisor,), (), stack.wheels)]
    venvs += [
        _venv(
            r(v.python, f"venvs.{v.name}.python") or stack.python,
            v.name,
            tuple(r(x, f"venvs.{v.name}.requirements") for x in v.requirements),
            tuple(r(x, f"venvs.{v.name}.constraints") for x in v.constraints),
            v.wheels or stack.wheels,
        )._replace(
            python_version=r(v.python_version, f"venvs.{v.name}.python_version"),
            python_hint=r(v.python_hint, f"venvs.{v.name}.python_hint"),
        )
        for v in stack.venvs
    ]
    inits, programs, ports = [], [], []
    files.append(
        DFile(
            "supervisord.conf",
            supervisor.CONF,
            supervisor.daemon_conf(base, stack.name),
            0o644,
            facts.user,
            "",
        )
    )
    by_id = {f.id: f for f in files}
    venv_spec = {v.name: v.spec for v in venvs}
    for s in stack.services:
        key = f"services.{s.name}"
        p = s.program
        user = r(p.user, f"{key}.program.user")
        conf = supervisor.program_conf(
            s.name,
            base,
            r(p.command, f"{key}.program.command"),
            {k: r(v, f"{key}.program.environment.{k}") for k, v in p.environment.items()},
            r(p.directory, f"{key}.program.directory"),
            user if is_root and user not in ("", facts.user) else "",
            p.priority,
            p.startsecs,
            p.stopsignal,
            p.stopwaitsecs,
            p.stopasgroup,
        )
        files.append(
            DFile(
                f"program:{s.name}",
                f"supervisor/programs/{s.name}.conf",
                conf,
                0o644,
                facts.user,
                s.name,
            )
        )
        deps = [f"file:{f.id}" for f in s.files] + [f"secret:{n}" for n in s.secrets] + list(s.uses)
        h = hashlib.sha256(conf.encode())
        for dep in sorted(set(deps)):
            kind, _, ref = dep.partition(":")
            value = {
                "file": lambda x: by_id[x].content,
                "secret": lambda x: secret_values[x],
                "venv": lambda x: venv_spec[x],
            }[kind](ref)
            h.update(f"\0{dep}\0{value}".encode())
        programs.append(
            DProgram(s.name, r(s.health, f"{key}.health"), h.hexdigest()[:16], p.priority)
        )
        for i in s.init:
            w = f"{key}.init.{i.id}"
            ih = ""
            if i.uses:
                dh = hashlib.sha256()
                for ref in i.uses:
                    dh.update(f"\0{ref}\0{by_id[ref].content}".encode())
                ih = dh.hexdigest()[:16]
            inits.append(
                DInit(
                    i.id,
                    s.name,
                    i.stage,
                    r(i.run, f"{w}.run"),
                    r(i.verify, f"{w}.verify"),
                    r(i.unless, f"{w}.unless"),
                    who(i.user, f"{w}.user"),
                    ih,
                )
            )
        for port in s.ports:
            text = r(port.port, f"{key}.ports.{port.name}")
            if not text.isdigit():
                raise stk.ConfigError(
                    stack.source, f"{key}.ports.{port.name}", f"port {text!r} is not a number"
                )
            ports.append(DPort(s.name, port.name, int(text), port.forward))
    # what `devkit status` checks later, as provisioned (with this run's --set values)
    services = {
        "health": {p.name: p.health for p in programs if p.health},
        "ports": [x._asdict() for x in ports],
    }
    files.append(
        DFile(
            "services.json", SERVICES, json.dumps(services, indent=1) + "\n", 0o644, facts.user, ""
        )
    )
    notes = render.render_file(env, stack.notes, ctx) if stack.notes else ""
    return Desired(
        base,
        facts.user,
        is_root,
        tuple(stk.all_packages(stack)),
        tuple(dirs),
        tuple(files),
        secret_values,
        frozenset(n for n in stack.secrets if n not in facts.secrets),
        tuple(venvs),
        tuple(inits),
        tuple(programs),
        tuple(ports),
        notes,
    )


def _enabled(value: str) -> bool:
    return value.strip().lower() not in ("false", "0", "no", "none")


def _venv(
    python: str, name: str, reqs: tuple[str, ...], cons: tuple[str, ...], wheels: str
) -> DVenv:
    spec = hashlib.sha256("\0".join([python, *reqs, "--", *cons]).encode()).hexdigest()[:16]
    return DVenv(name, python, reqs, cons, wheels, spec)
