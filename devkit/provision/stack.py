"""A stack is data: templates/stacks/<name>/stack.toml loaded into typed records (no rendering here).

String fields marked "template" are Jinja2 expressions rendered later (render.py) with the variables,
so `command = "redis-server {{ path('etc/redis.conf') | q }}"` is data, not code.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from devkit.errors import ConfigError, DevkitError
from devkit.provision import paths

_REL = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class DirSpec(NamedTuple):
    path: str  # relative to the base dir
    mode: int
    owner: str  # template; "" = the login user


class FileSpec(NamedTuple):
    id: str
    template: str  # file under the stack dir
    dest: str  # relative to the base dir
    mode: int
    owner: str  # template


class VenvSpec(NamedTuple):
    name: str
    python: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    wheels: str  # "controller", "remote" or "" (the stack's default)
    python_version: str = ""  # template: the interpreter must be this version (prefix, "3.11")
    python_hint: str = ""  # template: what to install when it is not


class InitSpec(NamedTuple):
    id: str  # "<service>.<step>"
    stage: str  # "prestart": before supervisord runs the service; "poststart": once it is healthy
    run: str  # template
    verify: str  # template
    unless: (
        str  # template: when it succeeds the step counts as done (marker is written, run skipped)
    )
    user: str  # template; "" = the login user
    uses: tuple[str, ...] = ()  # file ids: a change to one of them runs the step again


class ProgramSpec(NamedTuple):
    command: str
    environment: dict[str, str]
    directory: str
    user: str
    priority: int
    startsecs: int
    stopsignal: str
    stopwaitsecs: int
    stopasgroup: bool = True  # False for daemons that stop their own children (dockerd)


class PortSpec(NamedTuple):
    name: str
    port: str  # template
    forward: bool


class ServiceSpec(NamedTuple):
    name: str
    packages: tuple[str, ...]
    dirs: tuple[DirSpec, ...]
    files: tuple[FileSpec, ...]
    secrets: tuple[str, ...]
    uses: tuple[str, ...]  # "file:ID", "secret:NAME", "venv:NAME" this service also restarts for
    init: tuple[InitSpec, ...]
    program: ProgramSpec
    health: str  # template
    ports: tuple[PortSpec, ...]
    when: str = ""  # template: the service exists only when this renders truthy ("" = always)


class Stack(NamedTuple):
    name: str
    dir: Path
    source: str
    description: str
    python: str
    supervisor: str  # pip requirement for supervisord
    wheels: str  # where venv wheels come from: "controller" (downloaded here, uploaded) or "remote"
    packages: tuple[str, ...]
    vars: dict[str, Any]
    secrets: dict[str, int]  # name -> length
    venvs: tuple[VenvSpec, ...]
    dirs: tuple[DirSpec, ...]
    files: tuple[FileSpec, ...]
    services: tuple[ServiceSpec, ...]
    search: tuple[Path, ...] = ()  # template dirs after `dir`: the stacks this one extends
    notes: str = ""  # template file: what to tell the user after provisioning (login URL...)


class _Reader:
    """Typed access to one TOML table, naming file and key path on every mistake."""

    def __init__(self, source: str, key: str, table: Any, allowed: tuple[str, ...]) -> None:
        if not isinstance(table, dict):
            raise ConfigError(source, key, "must be a table")
        for k in table:
            if k not in allowed:
                raise ConfigError(
                    source,
                    f"{key}.{k}" if key else k,
                    "unknown key",
                    f"Known keys: {', '.join(allowed)}.",
                )
        self.source, self.key, self.t = source, key, table

    def _k(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def get(self, name: str, kind: type, default: Any) -> Any:
        v = self.t.get(name, default)
        if (kind is int and isinstance(v, bool)) or not isinstance(v, kind):
            raise ConfigError(
                self.source,
                self._k(name),
                f"expected {getattr(kind, '__name__', 'a string')}, got {type(v).__name__} {v!r}",
            )
        return v

    def strs(self, name: str) -> tuple[str, ...]:
        v = self.t.get(name, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(self.source, self._k(name), "expected a list of strings")
        return tuple(v)

    def rel(self, name: str, value: str) -> str:
        if not _REL.match(value) or ".." in value.split("/"):
            raise ConfigError(
                self.source,
                self._k(name),
                f"{value!r} must be a relative path inside the base dir",
                "Use letters, digits, . _ - and /, no `..`, no leading /.",
            )
        return value

    def mode(self, name: str, default: str) -> int:
        v = self.get(name, str, default)
        if not re.fullmatch(r"0?[0-7]{3}", v):
            raise ConfigError(
                self.source, self._k(name), f"{v!r} is not an octal mode", 'Write it as "0644".'
            )
        return int(v, 8)

    def sub(self, name: str, allowed: tuple[str, ...]) -> _Reader:
        return _Reader(self.source, self._k(name), self.t.get(name, {}), allowed)

    def items(self, name: str, allowed: tuple[str, ...]) -> list[_Reader]:
        v = self.t.get(name, [])
        if not isinstance(v, list):
            raise ConfigError(self.source, self._k(name), "expected a list of tables")
        return [_Reader(self.source, f"{self._k(name)}[{i}]", x, allowed) for i, x in enumerate(v)]


def find(name: str) -> Path:
    """The directory of stack `name` (a built-in name, or a path to a directory with stack.toml)."""
    if "/" in name or name.startswith("."):
        d = Path(name)
        if (d / "stack.toml").is_file():
            return d
        raise DevkitError(
            f"no stack.toml in {d}", "Point --stack at a directory that contains stack.toml."
        )
    for root in paths.stacks_dirs():
        if (root / name / "stack.toml").is_file():
            return root / name
    known = sorted({p.parent.name for r in paths.stacks_dirs() for p in r.glob("*/stack.toml")})
    raise DevkitError(f"unknown stack `{name}`", f"Known stacks: {', '.join(known) or 'none'}.")


def load(name: str, _seen: tuple[str, ...] = ()) -> Stack:
    d = find(name)
    source = str(d / "stack.toml")
    try:
        data = tomllib.loads((d / "stack.toml").read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"invalid TOML: {exc}") from None
    parent = data.get("stack", {}).get("extends") if isinstance(data.get("stack"), dict) else None
    if parent is None:
        return parse(data, d, source)
    if not isinstance(parent, str) or not parent:
        raise ConfigError(source, "stack.extends", "expected the name of another stack")
    if str(d) in _seen:
        raise ConfigError(source, "stack.extends", f"{parent!r} extends this stack back")
    base = load(parent, (*_seen, str(d)))
    return extend(base, parse(data, d, source, base), source)


def _deep(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def extend(base: Stack, child: Stack, source: str) -> Stack:
    """`child` on top of `base`: vars and secrets merged (the child wins), everything else appended."""
    names = {s.name for s in base.services}
    for s in child.services:
        if s.name in names:
            raise ConfigError(source, f"services.{s.name}", f"already defined by {base.name}")
    stack = child._replace(
        packages=tuple(dict.fromkeys((*base.packages, *child.packages))),
        vars=_deep(base.vars, child.vars),
        secrets={**base.secrets, **child.secrets},
        venvs=(*base.venvs, *child.venvs),
        dirs=(*base.dirs, *child.dirs),
        files=(*base.files, *child.files),
        services=(*base.services, *child.services),
        search=(*child.search, base.dir, *base.search),
        notes=child.notes or base.notes,
    )
    _check_refs(stack)
    return stack


def _dirs(r: _Reader, name: str) -> tuple[DirSpec, ...]:
    out = []
    for x in r.items(name, ("path", "mode", "owner")):
        out.append(
            DirSpec(
                x.rel("path", x.get("path", str, "")),
                x.mode("mode", "0755"),
                x.get("owner", str, ""),
            )
        )
    return tuple(out)


def _files(r: _Reader, d: Path, name: str, base: Stack | None) -> tuple[FileSpec, ...]:
    dirs = [d, *((base.dir, *base.search) if base else ())]
    out = []
    for x in r.items(name, ("id", "template", "dest", "mode", "owner")):
        tpl = x.get("template", str, "")
        if not any((t / tpl).is_file() for t in dirs):
            raise ConfigError(x.source, x._k("template"), f"template {tpl!r} not found in {d}")
        dest = x.rel("dest", x.get("dest", str, ""))
        out.append(
            FileSpec(
                x.get("id", str, Path(dest).name),
                tpl,
                dest,
                x.mode("mode", "0644"),
                x.get("owner", str, ""),
            )
        )
    return tuple(out)


def _service(name: str, r: _Reader, d: Path, base: Stack | None) -> ServiceSpec:
    p = r.sub(
        "program",
        (
            "command",
            "environment",
            "directory",
            "user",
            "priority",
            "startsecs",
            "stopsignal",
            "stopwaitsecs",
            "stopasgroup",
        ),
    )
    env = p.get("environment", dict, {})
    if not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(r.source, p._k("environment"), "values must be strings")
    program = ProgramSpec(
        p.get("command", str, ""),
        env,
        p.get("directory", str, ""),
        p.get("user", str, ""),
        p.get("priority", int, 100),
        p.get("startsecs", int, 1),
        p.get("stopsignal", str, "TERM"),
        p.get("stopwaitsecs", int, 10),
        p.get("stopasgroup", bool, True),
    )
    if not program.command:
        raise ConfigError(r.source, p._k("command"), "every service needs a program command")
    inits = []
    for x in r.items("init", ("id", "stage", "run", "verify", "unless", "user", "uses")):
        stage = x.get("stage", str, "poststart")
        if stage not in ("prestart", "poststart"):
            raise ConfigError(
                x.source, x._k("stage"), f"{stage!r}: expected 'prestart' or 'poststart'"
            )
        inits.append(
            InitSpec(
                f"{name}.{x.get('id', str, '')}",
                stage,
                x.get("run", str, ""),
                x.get("verify", str, "true"),
                x.get("unless", str, ""),
                x.get("user", str, ""),
                x.strs("uses"),
            )
        )
    ports = tuple(
        PortSpec(
            x.get("name", str, ""), str(x.get("port", (str, int), "")), x.get("forward", bool, True)
        )
        for x in r.items("ports", ("name", "port", "forward"))
    )
    uses = r.strs("uses")
    for u in uses:
        if u.partition(":")[0] not in ("file", "secret", "venv"):
            raise ConfigError(
                r.source, r._k("uses"), f"{u!r}: expected file:ID, secret:NAME or venv:NAME"
            )
    return ServiceSpec(
        name,
        r.strs("packages"),
        _dirs(r, "dirs"),
        _files(r, d, "files", base),
        r.strs("secrets"),
        uses,
        tuple(inits),
        program,
        r.get("health", str, ""),
        ports,
        r.get("when", str, ""),
    )


def parse(data: dict[str, Any], d: Path, source: str, base: Stack | None = None) -> Stack:
    top = _Reader(
        source, "", data, ("stack", "vars", "secrets", "venvs", "dirs", "files", "services")
    )
    s = top.sub(
        "stack",
        ("name", "description", "python", "supervisor", "packages", "wheels", "extends", "notes"),
    )
    secrets: dict[str, int] = {}
    for k, v in top.get("secrets", dict, {}).items():
        length = _Reader(source, f"secrets.{k}", v, ("length",)).get("length", int, 32)
        secrets[k] = length
    venvs = []
    for k, v in top.get("venvs", dict, {}).items():
        x = _Reader(
            source,
            f"venvs.{k}",
            v,
            (
                "python",
                "requirements",
                "constraints",
                "wheels",
                "python_version",
                "python_hint",
            ),
        )
        venvs.append(
            VenvSpec(
                k,
                x.get("python", str, ""),
                x.strs("requirements"),
                x.strs("constraints"),
                _wheels(x, ""),
                x.get("python_version", str, ""),
                x.get("python_hint", str, ""),
            )
        )
    services = []
    for k, v in top.get("services", dict, {}).items():
        if not _NAME.match(k):
            raise ConfigError(
                source, f"services.{k}", "service names are lowercase letters, digits, - and _"
            )
        services.append(
            _service(
                k,
                _Reader(
                    source,
                    f"services.{k}",
                    v,
                    (
                        "packages",
                        "dirs",
                        "files",
                        "secrets",
                        "uses",
                        "init",
                        "program",
                        "health",
                        "ports",
                        "when",
                    ),
                ),
                d,
                base,
            )
        )
    stack = Stack(
        s.get("name", str, d.name),
        d,
        source,
        s.get("description", str, ""),
        s.get("python", str, "/usr/bin/python3"),
        s.get("supervisor", str, "supervisor==4.3.0"),
        _wheels(s, "controller"),
        s.strs("packages"),
        top.get("vars", dict, {}),
        secrets,
        tuple(venvs),
        _dirs(top, "dirs"),
        _files(top, d, "files", base),
        tuple(services),
        notes=s.get("notes", str, ""),
    )
    if stack.notes and not any(
        (t / stack.notes).is_file() for t in (d, *((base.dir, *base.search) if base else ()))
    ):
        raise ConfigError(source, "stack.notes", f"template {stack.notes!r} not found in {d}")
    if base is None:
        _check_refs(stack)
    return stack


def _wheels(r: _Reader, default: str) -> str:
    v = r.get("wheels", str, default)
    if v not in ("controller", "remote", ""):
        raise ConfigError(r.source, r._k("wheels"), f"{v!r}: expected 'controller' or 'remote'")
    return v or default


def _check_refs(stack: Stack) -> None:
    files = {f.id for f in all_files(stack)}
    venvs = {v.name for v in stack.venvs}
    for svc in stack.services:
        for name in svc.secrets:
            if name not in stack.secrets:
                raise ConfigError(
                    stack.source,
                    f"services.{svc.name}.secrets",
                    f"unknown secret {name!r}",
                    "Declare it under [secrets].",
                )
        for i in svc.init:
            for ref in i.uses:
                if ref not in files:
                    raise ConfigError(
                        stack.source, f"services.{svc.name}.init.uses", f"no file with id {ref!r}"
                    )
        for u in svc.uses:
            kind, _, ref = u.partition(":")
            known = {"file": files, "secret": set(stack.secrets), "venv": venvs}[kind]
            if ref not in known:
                raise ConfigError(
                    stack.source, f"services.{svc.name}.uses", f"{u!r} names nothing in this stack"
                )
    ids = [f.id for f in all_files(stack)]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(
            stack.source,
            "files",
            f"duplicate file ids: {', '.join(sorted(dup))}",
            "Give each file a unique `id`.",
        )


def all_files(stack: Stack) -> list[FileSpec]:
    return [*stack.files, *(f for s in stack.services for f in s.files)]


def all_dirs(stack: Stack) -> list[DirSpec]:
    return [*stack.dirs, *(d for s in stack.services for d in s.dirs)]


def all_packages(stack: Stack) -> list[str]:
    return sorted({*stack.packages, *(p for s in stack.services for p in s.packages)})
