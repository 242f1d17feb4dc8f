"""A stack is data: templates/stacks/<name>/stack.toml loaded into typed records (no rendering here).

The parser knows [stack], [vars], [types], [services] and `extends`; every other top-level group
belongs to a resource kind, which hands it over as a `Group` (its record, schema, merge and checks:
kinds/registry.py collects them, and `registry.load_stack` loads a stack with them).

String fields marked "template" are Jinja2 expressions rendered later (render.py) with the variables,
so `command = "redis-server {{ path('etc/redis.conf') | q }}"` is data, not code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from devkit import files, paths
from devkit import schema as s
from devkit.errors import ConfigError, DevkitError
from devkit.provision.stack import vartypes

_REL = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")  # fullmatch-ed: `$` allows a newline
# a stack's name is a folder of devkit's (@devkit/NAME, the sandbox's @devkit/HOST/NAME); secrets
# and venvs are files and folders of the base dir: never `.`, `..` or a path
SAFE_NAME = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
NAME_RULE = "letters, digits, . _ - (not first: . -)"

# the formats a file template's output can be in: each `{{ value }}` in it is written as a literal of
# its format (render.ESCAPES); "text" writes values as they are
FORMATS = ("shell", "toml", "json", "yaml", "ini", "pgconf", "redisconf", "python", "text")
SUFFIXES = {
    ".sh": "shell",
    ".bash": "shell",
    ".toml": "toml",
    ".json": "json",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".ini": "ini",
    ".py": "python",
    ".txt": "text",
}


def format_of(template: str) -> str:
    """A template's format by its name (`agent.toml.j2`: toml); "" when the name does not tell
    (`.conf` is anyone's)."""
    name = template.removesuffix(".j2")
    return SUFFIXES.get(Path(name).suffix, "")


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
    format: str  # FORMATS: declared, else the template's name's


class InitSpec(NamedTuple):
    id: str  # "<service>.<step>"
    stage: str  # "prestart": before supervisord runs the service; "poststart": once it is healthy
    run: str  # template
    verify: str  # template
    unless: (
        str  # template: when it succeeds the step counts as done (marker is written, run skipped)
    )
    user: str  # template; "" = the login user
    uses: tuple[str, ...] = ()  # file ids or secret:NAME: a change to one runs the step again
    recheck: bool = False  # verify it on every run (cheaply), and run it again when that fails
    when: str = ""  # template: the step exists only when this renders truthy ("" = always)


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
    # where venv wheels come from: "controller" (downloaded here, uploaded), "remote" (the host's own
    # pip), or "auto": the controller when its Python is the venv's, else the host (a controller
    # cannot build a 3.13 host's few sdists with its own 3.11)
    wheels: str
    packages: tuple[str, ...]
    vars: dict[str, Any]
    types: dict[str, str]  # dotted variable name -> its declared type (vartypes.TYPES)
    services: tuple[ServiceSpec, ...]
    search: tuple[Path, ...] = ()  # template dirs after `dir`: the stacks this one extends
    notes: str = ""  # template file: what to tell the user after provisioning (login URL...)
    platforms: tuple[str, ...] = ()  # "debian 12", ...; () = any
    platform: dict[str, dict[str, Any]] = {}  # platform -> {"vars": ..., "packages": ...}
    # the top-level groups the resource kinds own ([secrets], [venvs], [dirs], [files], [checkout],
    # [images], [cluster], [edit]): group key -> that kind's record (see Group)
    groups: Mapping[str, Any] = {}

    def group(self, key: str) -> Any:
        """A kind's record of its group (what its parse makes of an absent group, if absent)."""
        return self.groups[key]


def _unchanged(stack: Stack) -> Stack:
    return stack


def _no_check(stack: Stack) -> None:
    return None


def overlay(base: Any, child: Any) -> Any:
    """The merge of a group a stack has at most once ([checkout], [images]): the child's, if it
    has one."""
    return child if child is not None else base


def concat(base: tuple[Any, ...], child: tuple[Any, ...]) -> tuple[Any, ...]:
    """The merge of a group of many items ([dirs], [files], [venvs]): the base's, then the child's."""
    return (*base, *child)


class Group(NamedTuple):
    """A top-level group of stack.toml that a resource kind owns and hands to the parser (as tox's
    parts register their own config keys): the kind keeps its record, schema and rules in its own
    module, and the parser knows only [stack], [vars], [types], [services] and `extends`."""

    key: str  # the group's key in stack.toml
    # (the TOML value or None when absent, where it is, the template dirs) -> the kind's record
    parse: Callable[[Any, s.Where, tuple[Path, ...]], Any]
    merge: Callable[[Any, Any], Any] = (
        overlay  # (the extended stack's, this stack's) -> the stack's
    )
    check: Callable[[Stack], None] = _no_check  # once the whole stack is known: its references
    finish: Callable[[Stack], Stack] = _unchanged  # the outermost stack once loaded
    ref: str = ""  # how services name its items in `uses` ("file" for file:ID), "" for none
    names: Callable[[Stack], set[str]] = lambda stack: set()  # what `ref:NAME` may name
    schema: s.Check = s.anything()  # the group's TOML, checked (the reference docs read it)
    doc: str = ""  # what the group is, in one line


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


def builtin(stack: Stack) -> bool:
    """Is this one of devkit's own stacks (loaded by name), not a folder of the user's?"""
    return any(stack.dir.resolve() == (root / stack.name).resolve() for root in paths.stacks_dirs())


def load(name: str, groups: tuple[Group, ...], _seen: tuple[str, ...] = ()) -> Stack:
    """Stack `name` with the kinds' `groups` (the registry's: kinds.registry.load_stack)."""
    d = find(name)
    source = str(d / "stack.toml")
    data = files.read_toml(source)
    parent = data.get("stack", {}).get("extends") if isinstance(data.get("stack"), dict) else None
    if parent is None:
        stack = parse(data, d, source, groups)
    else:
        if not isinstance(parent, str) or not parent:
            raise ConfigError(source, "stack.extends", "expected the name of another stack")
        if str(d) in _seen:
            raise ConfigError(source, "stack.extends", f"{parent!r} extends this stack back")
        base = load(parent, groups, (*_seen, str(d)))
        stack = extend(base, parse(data, d, source, groups, base), source, groups)
    if not _seen:  # the outermost stack
        for g in groups:
            stack = g.finish(stack)
    return stack


def extend(base: Stack, child: Stack, source: str, groups: tuple[Group, ...]) -> Stack:
    """`child` on top of `base`: vars merged (the child wins), services appended, each group by
    its kind's merge."""
    names = {svc.name for svc in base.services}
    for svc in child.services:
        if svc.name in names:
            raise ConfigError(source, f"services.{svc.name}", f"already defined by {base.name}")
    stack = child._replace(
        packages=tuple(dict.fromkeys((*base.packages, *child.packages))),
        vars=vartypes.merge(base.vars, child.vars),
        types={**base.types, **child.types},
        services=(*base.services, *child.services),
        search=(*child.search, base.dir, *base.search),
        notes=child.notes or base.notes,
        platforms=child.platforms or base.platforms,
        platform=vartypes.merge(base.platform, child.platform),
        groups={g.key: g.merge(base.group(g.key), child.group(g.key)) for g in groups},
    )
    _check_refs(stack, groups)
    return stack


def _mode(value: Any, where: s.Where) -> int:
    """an octal mode string, as "0644"."""
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}", value):
        raise where.fail(f"{value!r} is not an octal mode", 'Write it as "0644".')
    return int(value, 8)


_mode.show = lambda mode: f'"{mode:04o}"'  # type: ignore[attr-defined]  # in the reference docs


def _rel(value: Any, where: s.Where) -> str:
    """a path relative to the base dir (letters, digits, . _ - and /; no `..`)."""
    if not isinstance(value, str) or not _REL.fullmatch(value) or ".." in value.split("/"):
        raise where.fail(
            f"{value!r} must be a relative path inside the base dir",
            "Use letters, digits, . _ - and /, no `..`, no leading /.",
        )
    return value


def _port(value: Any, where: s.Where) -> str:
    """a port number, or a template string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise where.fail(f"expected a port number or a template string, got {value!r}")
    return str(value)


def _use(value: str, where: s.Where) -> str:
    """KIND:NAME, as file:ID, secret:NAME or venv:NAME."""
    if not re.fullmatch(r"[a-z]+:[^:\s]+", value):
        raise where.fail(f"{value!r}: expected KIND:NAME, as file:ID, secret:NAME or venv:NAME")
    return value


WHEELS = s.choice("auto", "controller", "remote", "")
_OWNER = "template: the owning user (empty: the login user)"
DIR = s.Table(
    s.Key("path", _rel),
    s.Key("mode", _mode, 0o755),
    s.Key("owner", s.string(), "", _OWNER),
)
FILE = s.Table(
    s.Key(
        "id", s.string(), "", "how `uses` and init steps name it (default: the dest's file name)"
    ),
    s.Key("template", s.string(), doc="a Jinja2 template file in the stack's folder"),
    s.Key("dest", _rel),
    s.Key("mode", _mode, 0o640),
    s.Key("owner", s.string(), "", _OWNER),
    s.Key(
        "format",
        s.choice(*FORMATS, ""),
        "",
        "how every value in it is escaped (default: by the template's name: .sh .toml .json .yml .ini .py .txt)",
    ),
)
ENV_NAME = s.string(r"[A-Za-z_][A-Za-z0-9_]*", "a name")
PROGRAM = s.Table(
    s.Key("command", s.string(r".+", "a command"), doc="template: the command supervisord runs"),
    # supervisord reads `environment` as KEY="value" pairs: a key is a plain name
    s.Key(
        "environment",
        s.mapping(s.string(), key=ENV_NAME),
        {},
        "templates: its environment variables",
    ),
    s.Key("directory", s.string(), "", "template: its working directory"),
    s.Key("user", s.string(), "", "template: who runs it (empty: the login user)"),
    s.Key("priority", s.integer(), 100, "supervisord's start order"),
    s.Key("startsecs", s.integer(), 1, "seconds it must stay up to count as started"),
    s.Key("stopsignal", s.string(), "TERM", "the signal that stops it"),
    s.Key("stopwaitsecs", s.integer(), 10, "seconds between the stop signal and SIGKILL"),
    s.Key(
        "stopasgroup",
        s.boolean(),
        True,
        "the signal goes to its process group (false for daemons that stop their children, dockerd)",
    ),
)
INIT = s.Table(
    s.Key("id", s.string(r"[A-Za-z0-9._-]+", "letters, digits, . _ -")),
    s.Key(
        "stage",
        s.choice("prestart", "poststart"),
        "poststart",
        "before supervisord runs the service, or once it is healthy",
    ),
    s.Key("run", s.string(), "", "template: the shell command that does it"),
    s.Key("verify", s.string(), "true", "template: must succeed once it ran"),
    s.Key(
        "unless",
        s.string(),
        "",
        "template: when it succeeds the step counts as done, and `run` is skipped",
    ),
    s.Key("user", s.string(), "", "template: who runs it (empty: the login user)"),
    s.Key(
        "uses",
        s.strings(),
        (),
        "file ids or secret:NAME: a change to one runs the step again",
    ),
    s.Key(
        "recheck",
        s.boolean(),
        False,
        "verify it on every run and run it again when that fails (state that lives in a service)",
    ),
    s.Key("when", s.string(), "", "template: the step exists only when this renders truthy"),
)
PORT = s.Table(
    s.Key("name", s.string(), doc="what the port is, for people (`manager api`)"),
    s.Key("port", _port),
    s.Key(
        "forward",
        s.boolean(),
        True,
        "`devkit ssh-config` forwards it on the HOST-tunnel block",
    ),
)
SERVICE = s.Table(
    s.Key("packages", s.strings(), (), "distribution packages it needs"),
    s.Key("dirs", s.list_of(s.table(DIR)), (), "its folders under the base dir"),
    s.Key("files", s.list_of(s.table(FILE)), (), "its config files, rendered from templates"),
    s.Key("secrets", s.strings(), (), "the [secrets] it reads"),
    s.Key("uses", s.strings(_use), (), "what else restarts it when it changes"),
    s.Key("init", s.list_of(s.table(INIT)), (), "one-time steps, each guarded and verified"),
    s.Key("program", s.table(PROGRAM), doc="how supervisord runs it"),
    s.Key("health", s.string(), "", "template: a shell command that exits 0 when it answers"),
    s.Key("ports", s.list_of(s.table(PORT)), (), "what it listens on"),
    s.Key("when", s.string(), "", "template: the service exists only when this renders truthy"),
)
HEAD = s.Table(
    s.Key(
        "name",
        s.string(SAFE_NAME, f"a stack's name: {NAME_RULE}"),
        "",
        "the stack's name (default: its folder's)",
    ),
    s.Key("description", s.string(), "", "one line for people"),
    s.Key("python", s.string(), "/usr/bin/python3", "the interpreter of its venvs"),
    s.Key("supervisor", s.string(), "supervisor==4.3.0", "the pip requirement for supervisord"),
    s.Key("packages", s.strings(), (), "distribution packages every host gets"),
    s.Key(
        "wheels",
        WHEELS,
        "auto",
        'where venv wheels come from: "controller" (downloaded here, uploaded), "remote" (the '
        "host's own pip), or \"auto\": here when this Python is the venv's, else the host",
    ),
    s.Key(
        "extends", s.string(r".+", "the name of another stack"), "", "the stack this one extends"
    ),
    s.Key("notes", s.string(), "", "a template of what to tell the user once it is provisioned"),
    s.Key(
        "platforms",
        s.strings(),
        (),
        'the systems it runs on, as "<os-release ID> <VERSION_ID>" ("debian 12"); [] = any',
    ),
)
PLATFORM_NAME = s.string(r"[a-z][a-z0-9.-]* [0-9][0-9.]*", 'an OS and version, as "debian 12"')
# what differs on one platform: variables, and package names (a name mapped to "" is dropped)
PLATFORM = s.Table(
    s.Key("vars", s.mapping(s.anything()), {}, "variables on this platform"),
    s.Key(
        "packages",
        s.mapping(s.string()),
        {},
        'a package\'s name on this platform ("" drops it)',
    ),
)
SERVICE_NAME = s.string(r"[a-z][a-z0-9_-]*", "a service name: lowercase letters, digits, - and _")
STACK = s.Table(
    s.Key("stack", s.table(HEAD), None, "the stack itself"),
    s.Key("vars", s.mapping(s.anything()), {}, "its variables (nested tables), for the templates"),
    s.Key(
        "types",
        s.mapping(s.anything()),
        {},
        "a variable's type, by its dotted name (" + ", ".join(vartypes.TYPES) + ")",
    ),
    s.Key("services", s.mapping(s.table(SERVICE), key=SERVICE_NAME), {}, "its services, by name"),
    s.Key(
        "platform",
        s.mapping(s.table(PLATFORM), key=PLATFORM_NAME),
        {},
        "what differs on a platform",
    ),
)


def _types(tree: dict[str, Any], where: s.Where) -> dict[str, str]:
    out = {}
    for name, kind in vartypes.flatten(tree).items():
        if kind not in vartypes.TYPES:
            raise where.key(name).fail(
                f"unknown type {kind!r}", f"Types: {', '.join(vartypes.TYPES)}."
            )
        out[name] = kind
    return out


def dir_specs(items: tuple[dict[str, Any], ...]) -> tuple[DirSpec, ...]:
    return tuple(DirSpec(x["path"], x["mode"], x["owner"]) for x in items)


def file_specs(
    items: tuple[dict[str, Any], ...], where: s.Where, dirs: tuple[Path, ...]
) -> tuple[FileSpec, ...]:
    out = []
    for i, x in enumerate(items):
        if not any((t / x["template"]).is_file() for t in dirs):
            raise (
                where.index(i)
                .key("template")
                .fail(f"template {x['template']!r} not found in {dirs[0]}")
            )
        fmt = x["format"] or format_of(x["template"])
        if not fmt:
            raise (
                where.index(i)
                .key("format")
                .fail(
                    f"cannot tell the format of {x['template']!r} from its name",
                    f"Declare it: format = one of {', '.join(map(repr, FORMATS))} (every value in "
                    'the file is written for it; "text" writes values as they are).',
                )
            )
        fid = x["id"] or Path(x["dest"]).name
        out.append(FileSpec(fid, x["template"], x["dest"], x["mode"], x["owner"], fmt))
    return tuple(out)


def _service(name: str, x: dict[str, Any], where: s.Where, dirs: tuple[Path, ...]) -> ServiceSpec:
    p = x["program"]
    return ServiceSpec(
        name,
        x["packages"],
        dir_specs(x["dirs"]),
        file_specs(x["files"], where.key("files"), dirs),
        x["secrets"],
        x["uses"],
        tuple(
            InitSpec(
                f"{name}.{i['id']}",
                i["stage"],
                i["run"],
                i["verify"],
                i["unless"],
                i["user"],
                i["uses"],
                i["recheck"],
                i["when"],
            )
            for i in x["init"]
        ),
        ProgramSpec(
            p["command"],
            p["environment"],
            p["directory"],
            p["user"],
            p["priority"],
            p["startsecs"],
            p["stopsignal"],
            p["stopwaitsecs"],
            p["stopasgroup"],
        ),
        x["health"],
        tuple(PortSpec(q["name"], q["port"], q["forward"]) for q in x["ports"]),
        x["when"],
    )


def parse(
    data: dict[str, Any], d: Path, source: str, groups: tuple[Group, ...], base: Stack | None = None
) -> Stack:
    where = s.Where(source)
    own = {g.key for g in groups}
    v = s.validate(STACK, {k: x for k, x in data.items() if k not in own}, where)
    head = v["stack"] or s.validate(HEAD, None, where.key("stack"))
    if not head["name"] and not re.fullmatch(SAFE_NAME, d.name):
        raise ConfigError(
            source,
            "stack.name",
            f"none, and the folder's name {d.name!r} is not a stack's name ({NAME_RULE})",
            'Name the stack: [stack] name = "mystack".',
        )
    dirs = (d, *((base.dir, *base.search) if base else ()))
    services = tuple(
        _service(name, x, where.key("services").key(name), dirs)
        for name, x in v["services"].items()
    )
    stack = Stack(
        head["name"] or d.name,
        d,
        source,
        head["description"],
        head["python"],
        head["supervisor"],
        head["wheels"] or "auto",
        head["packages"],
        v["vars"],
        _types(v["types"], where.key("types")),
        services,
        notes=head["notes"],
        platforms=head["platforms"],
        platform=v["platform"],
        groups={g.key: g.parse(data.get(g.key), where.key(g.key), dirs) for g in groups},
    )
    if stack.notes and not any((t / stack.notes).is_file() for t in dirs):
        raise ConfigError(source, "stack.notes", f"template {stack.notes!r} not found in {d}")
    if base is None:
        _check_refs(stack, groups)
    return stack


def _check_refs(stack: Stack, groups: tuple[Group, ...]) -> None:
    """What the stack's parts name exists: declared variables, what services `use`, and each
    group's own references (its kind's check)."""
    declared = vartypes.flatten(stack.vars)
    for name in stack.types:
        if name not in declared:
            raise ConfigError(stack.source, f"types.{name}", "no such variable under [vars]")
    known = {g.ref: g.names(stack) for g in groups if g.ref}
    for svc in stack.services:
        for i in svc.init:
            for ref in i.uses:  # a bare name is a file id
                kind, _, name = ref.rpartition(":")
                if (kind or "file") not in ("file", "secret") or name not in known.get(
                    kind or "file", set()
                ):
                    raise ConfigError(
                        stack.source,
                        f"services.{svc.name}.init.uses",
                        f"{ref!r}: expected a file id or secret:NAME of this stack",
                    )
        for u in svc.uses:
            kind, _, ref = u.partition(":")
            if kind not in known:
                raise ConfigError(
                    stack.source,
                    f"services.{svc.name}.uses",
                    f"{u!r}: expected {', '.join(f'{k}:NAME' for k in sorted(known))}",
                )
            if ref not in known[kind]:
                raise ConfigError(
                    stack.source, f"services.{svc.name}.uses", f"{u!r} names nothing in this stack"
                )
    for g in groups:
        g.check(stack)


def all_packages(stack: Stack, platform: str | None = None) -> list[str]:
    """The packages the stack installs: on one platform (its names mapped), or on any (every name
    any platform may use: what to ask a host about before knowing its platform)."""
    names = {*stack.packages, *(p for svc in stack.services for p in svc.packages)}
    if platform is None:
        return sorted(
            names | {n for t in stack.platform.values() for n in t["packages"].values() if n}
        )
    mapped = stack.platform.get(platform, {}).get("packages", {})
    return sorted({mapped.get(n, n) for n in names} - {""})


def platform_of(os_release: Any) -> str:
    """A host's platform as stacks name it: "<ID> <VERSION_ID>" from its os-release."""
    return f"{os_release.get('id', '')} {os_release.get('version', '')}".strip()
