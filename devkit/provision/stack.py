"""A stack is data: templates/stacks/<name>/stack.toml loaded into typed records (no rendering here).

String fields marked "template" are Jinja2 expressions rendered later (render.py) with the variables,
so `command = "redis-server {{ path('etc/redis.conf') | q }}"` is data, not code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

from devkit import files
from devkit import schema as s
from devkit.errors import ConfigError, DevkitError
from devkit.provision import editspec, paths, vartypes

_REL = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")  # fullmatch-ed: `$` allows a newline
# a stack's name is a folder of devkit's (@devkit/NAME, the sandbox's @devkit/HOST/NAME); secrets
# and venvs are files and folders of the base dir: never `.`, `..` or a path
NAME = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
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


class VenvSpec(NamedTuple):
    name: str
    python: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    wheels: str  # "auto", "controller", "remote" or "" (the stack's default)
    python_version: str = ""  # template: the interpreter must be this version (prefix, "3.11")
    python_hint: str = ""  # template: what to install when it is not
    check: str = ""  # a module the venv must be able to find (else it is rebuilt)
    when: str = ""  # template: the venv exists only when this renders truthy ("" = always)


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


class CheckoutSpec(NamedTuple):
    """Where the stack's code comes from, when not from released wheels (resources/checkout.py)."""

    source: str  # template: "pypi"/"none", "URL[@REF]", "PATH[@REF]" (a bundle or repository here)
    path: str  # template: where the checkout lives on the host (absolute)
    venv: str  # template: the dev venv, relative to the checkout ("" = none)
    requirements: str  # relative to the checkout
    lock: str  # relative to the checkout: Pants' JSON lock or uv's TOML lock
    fixes: tuple[str, ...]  # templates: pins that replace the lock's (known fixes per line)
    lfs_wheels: tuple[str, ...]  # distributions on PyPI that carry the repository's LFS files


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


class ImageSpec(NamedTuple):
    """A container image built here without a registry: a Debian root filesystem (debootstrap on
    this machine), imported into the engine, then a Dockerfile of ENV and LABEL lines only."""

    name: str
    tag: str  # template
    alias: str  # template: the name the stack registers it under ("" = none)
    release: str  # template: the Debian release of its root filesystem
    packages: tuple[str, ...]  # templates: what debootstrap includes (it resolves no virtual
    # packages); one that renders empty is dropped
    env: dict[str, str]  # templates
    labels: dict[str, str]  # templates
    when: str = ""  # template: built only when this renders truthy


class ImagesSpec(NamedTuple):
    engine: str  # template: the Docker engine (DOCKER_HOST) the images go into
    before: str  # the service whose start waits for them (else: after the last service)
    hook_venv: str  # where a host whose engine cannot raise rlimits gets the capping hook
    pull: str  # template: registry images to pull instead (whitespace-separated references)
    register: str  # template: run for each image that is new or changed ($DEVKIT_IMAGE_...)
    verify: str  # template: must pass after register
    build: tuple[ImageSpec, ...]


class ClusterSpec(NamedTuple):
    """A stack over several hosts: a manager host and agent hosts (the `cluster` variable)."""

    waits: tuple[str, ...]  # services an agent host starts once the manager host's run is done
    status: str  # template, run on the manager host by `devkit status`: a line per member,
    # exit 0 when every one is alive


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
    secrets: dict[str, int]  # name -> length
    venvs: tuple[VenvSpec, ...]
    dirs: tuple[DirSpec, ...]
    files: tuple[FileSpec, ...]
    services: tuple[ServiceSpec, ...]
    search: tuple[Path, ...] = ()  # template dirs after `dir`: the stacks this one extends
    notes: str = ""  # template file: what to tell the user after provisioning (login URL...)
    platforms: tuple[str, ...] = ()  # "debian 12", ...; () = any
    checkout: CheckoutSpec | None = None
    platform: dict[str, dict[str, Any]] = {}  # platform -> {"vars": ..., "packages": ...}
    images: ImagesSpec | None = None  # container images the stack's Docker engine must have
    cluster: ClusterSpec | None = None  # how the stack spans hosts by role
    edit: editspec.EditSpec | None = None  # the edit loop ([edit]): services run from a checkout


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


def load(name: str, _seen: tuple[str, ...] = ()) -> Stack:
    d = find(name)
    source = str(d / "stack.toml")
    data = files.read_toml(source)
    parent = data.get("stack", {}).get("extends") if isinstance(data.get("stack"), dict) else None
    if parent is None:
        return _with_watcher(parse(data, d, source), _seen)
    if not isinstance(parent, str) or not parent:
        raise ConfigError(source, "stack.extends", "expected the name of another stack")
    if str(d) in _seen:
        raise ConfigError(source, "stack.extends", f"{parent!r} extends this stack back")
    base = load(parent, (*_seen, str(d)))
    return _with_watcher(extend(base, parse(data, d, source, base), source), _seen)


def _with_watcher(stack: Stack, seen: tuple[str, ...]) -> Stack:
    """The stack with the edit loop's watcher as a service of its own (the outermost stack only)."""
    if seen or stack.edit is None:
        return stack
    program = ProgramSpec(editspec.watcher_command(stack.edit), {}, "", "", **editspec.PROGRAM)
    uses = (f"file:{editspec.RULES_ID}", f"file:{editspec.SCRIPT_ID}")
    watcher = ServiceSpec(
        editspec.WATCHER,
        (),
        (),
        (),
        (),
        uses,
        (),
        program,
        "",
        (),
        editspec.when_watching(stack.edit),
    )
    return stack._replace(services=(*stack.services, watcher))


def extend(base: Stack, child: Stack, source: str) -> Stack:
    """`child` on top of `base`: vars and secrets merged (the child wins), everything else appended."""
    names = {svc.name for svc in base.services}
    for svc in child.services:
        if svc.name in names:
            raise ConfigError(source, f"services.{svc.name}", f"already defined by {base.name}")
    stack = child._replace(
        packages=tuple(dict.fromkeys((*base.packages, *child.packages))),
        vars=vartypes.merge(base.vars, child.vars),
        types={**base.types, **child.types},
        secrets={**base.secrets, **child.secrets},
        venvs=(*base.venvs, *child.venvs),
        dirs=(*base.dirs, *child.dirs),
        files=(*base.files, *child.files),
        services=(*base.services, *child.services),
        search=(*child.search, base.dir, *base.search),
        notes=child.notes or base.notes,
        platforms=child.platforms or base.platforms,
        checkout=child.checkout or base.checkout,
        platform=vartypes.merge(base.platform, child.platform),
        images=child.images or base.images,
        cluster=child.cluster or base.cluster,
        edit=child.edit or base.edit,
    )
    _check_refs(stack)
    return stack


def _mode(value: Any, where: s.Where) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}", value):
        raise where.fail(f"{value!r} is not an octal mode", 'Write it as "0644".')
    return int(value, 8)


def _rel(value: Any, where: s.Where) -> str:
    if not isinstance(value, str) or not _REL.fullmatch(value) or ".." in value.split("/"):
        raise where.fail(
            f"{value!r} must be a relative path inside the base dir",
            "Use letters, digits, . _ - and /, no `..`, no leading /.",
        )
    return value


def _port(value: Any, where: s.Where) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise where.fail(f"expected a port number or a template string, got {value!r}")
    return str(value)


def _use(value: str, where: s.Where) -> str:
    if value.partition(":")[0] not in ("file", "secret", "venv"):
        raise where.fail(f"{value!r}: expected file:ID, secret:NAME or venv:NAME")
    return value


_WHEELS = s.choice("auto", "controller", "remote", "")
DIR = s.Table(s.Key("path", _rel), s.Key("mode", _mode, 0o755), s.Key("owner", s.string(), ""))
FILE = s.Table(
    s.Key("id", s.string(), ""),
    s.Key("template", s.string()),
    s.Key("dest", _rel),
    s.Key("mode", _mode, 0o640),
    s.Key("owner", s.string(), ""),
    s.Key("format", s.choice(*FORMATS, ""), ""),
)
ENV_NAME = s.string(r"[A-Za-z_][A-Za-z0-9_]*", "a name")
PROGRAM = s.Table(
    s.Key("command", s.string(r".+", "a command"), doc="every service needs a program command"),
    # supervisord reads `environment` as KEY="value" pairs: a key is a plain name
    s.Key("environment", s.mapping(s.string(), key=ENV_NAME), {}),
    s.Key("directory", s.string(), ""),
    s.Key("user", s.string(), ""),
    s.Key("priority", s.integer(), 100),
    s.Key("startsecs", s.integer(), 1),
    s.Key("stopsignal", s.string(), "TERM"),
    s.Key("stopwaitsecs", s.integer(), 10),
    s.Key("stopasgroup", s.boolean(), True),
)
INIT = s.Table(
    s.Key("id", s.string(r"[A-Za-z0-9._-]+", "letters, digits, . _ -")),
    s.Key("stage", s.choice("prestart", "poststart"), "poststart"),
    s.Key("run", s.string(), ""),
    s.Key("verify", s.string(), "true"),
    s.Key("unless", s.string(), ""),
    s.Key("user", s.string(), ""),
    s.Key("uses", s.strings(), ()),
    s.Key("recheck", s.boolean(), False),
    s.Key("when", s.string(), ""),
)
PORT = s.Table(s.Key("name", s.string()), s.Key("port", _port), s.Key("forward", s.boolean(), True))
SERVICE = s.Table(
    s.Key("packages", s.strings(), ()),
    s.Key("dirs", s.list_of(s.table(DIR)), ()),
    s.Key("files", s.list_of(s.table(FILE)), ()),
    s.Key("secrets", s.strings(), ()),
    s.Key("uses", s.strings(_use), ()),
    s.Key("init", s.list_of(s.table(INIT)), ()),
    s.Key("program", s.table(PROGRAM)),
    s.Key("health", s.string(), ""),
    s.Key("ports", s.list_of(s.table(PORT)), ()),
    s.Key("when", s.string(), ""),
)
VENV = s.Table(
    s.Key("python", s.string(), ""),
    s.Key("requirements", s.strings(), ()),
    s.Key("constraints", s.strings(), ()),
    s.Key("wheels", _WHEELS, ""),
    s.Key("python_version", s.string(), ""),
    s.Key("python_hint", s.string(), ""),
    s.Key("check", s.string(r"[A-Za-z_][\w.]*", "a module name"), ""),
    s.Key("when", s.string(), ""),
)
HEAD = s.Table(
    s.Key("name", s.string(NAME, f"a stack's name: {NAME_RULE}"), ""),
    s.Key("description", s.string(), ""),
    s.Key("python", s.string(), "/usr/bin/python3"),
    s.Key("supervisor", s.string(), "supervisor==4.3.0"),
    s.Key("packages", s.strings(), ()),
    s.Key("wheels", _WHEELS, "auto"),
    s.Key("extends", s.string(r".+", "the name of another stack"), ""),
    s.Key("notes", s.string(), ""),
    # the operating systems it runs on, as "<os-release ID> <VERSION_ID>" ("debian 12"); [] = any
    s.Key("platforms", s.strings(), ()),
)
CHECKOUT = s.Table(
    s.Key("source", s.string()),
    s.Key("path", s.string()),
    s.Key("venv", s.string(), ""),
    s.Key("requirements", s.string(), "requirements.txt"),
    s.Key("lock", s.string(), "python.lock"),
    s.Key("fixes", s.strings(), ()),
    s.Key("lfs_wheels", s.strings(), ()),
)
PLATFORM_NAME = s.string(r"[a-z][a-z0-9.-]* [0-9][0-9.]*", 'an OS and version, as "debian 12"')
# what differs on one platform: variables, and package names (a name mapped to "" is dropped)
PLATFORM = s.Table(
    s.Key("vars", s.mapping(s.anything()), {}),
    s.Key("packages", s.mapping(s.string()), {}),
)
IMAGE = s.Table(
    s.Key("tag", s.string(r".+", "an image tag")),
    s.Key("alias", s.string(), ""),
    s.Key("release", s.string(r".+", "a Debian release")),
    s.Key("packages", s.strings(), ()),
    s.Key("env", s.mapping(s.string(), key=ENV_NAME), {}),
    s.Key(
        "labels", s.mapping(s.string(), key=s.string(r"[A-Za-z0-9][A-Za-z0-9._/-]*", "a label")), {}
    ),
    s.Key("when", s.string(), ""),
)
IMAGES = s.Table(
    s.Key("engine", s.string(r".+", "a Docker engine URL")),
    s.Key("before", s.string(), ""),
    s.Key("hook_venv", s.string(), ""),
    s.Key("pull", s.string(), ""),
    s.Key("register", s.string(), ""),
    s.Key("verify", s.string(), "true"),
    s.Key(
        "build", s.mapping(s.table(IMAGE), key=s.string(r"[a-z][a-z0-9_-]*", "an image name")), {}
    ),
)
CLUSTER = s.Table(s.Key("waits", s.strings(), ()), s.Key("status", s.string(), ""))
SERVICE_NAME = s.string(r"[a-z][a-z0-9_-]*", "a service name: lowercase letters, digits, - and _")
STACK = s.Table(
    s.Key("stack", s.anything(), None),  # HEAD, validated with its defaults
    s.Key("vars", s.mapping(s.anything()), {}),
    s.Key("types", s.mapping(s.anything()), {}),
    s.Key(
        "secrets",
        s.mapping(
            s.table(s.Table(s.Key("length", s.integer(min=8), 32))),
            key=s.string(NAME, f"a secret's name: {NAME_RULE}"),
        ),
        {},
    ),
    s.Key("venvs", s.mapping(s.table(VENV), key=s.string(NAME, f"a venv's name: {NAME_RULE}")), {}),
    s.Key("dirs", s.list_of(s.table(DIR)), ()),
    s.Key("files", s.list_of(s.table(FILE)), ()),
    s.Key("services", s.mapping(s.table(SERVICE), key=SERVICE_NAME), {}),
    s.Key("platform", s.mapping(s.table(PLATFORM), key=PLATFORM_NAME), {}),
    s.Key("checkout", s.anything(), None),  # CHECKOUT, when the stack can run from a checkout
    s.Key("images", s.anything(), None),  # IMAGES, validated with its defaults
    s.Key("cluster", s.anything(), None),  # CLUSTER
    s.Key("edit", s.anything(), None),  # editspec.EDIT: the edit loop's own group
)


def _images(data: Any, where: s.Where) -> ImagesSpec | None:
    if data is None:
        return None
    v = s.validate(IMAGES, data, where)
    return ImagesSpec(
        v["engine"],
        v["before"],
        v["hook_venv"],
        v["pull"],
        v["register"],
        v["verify"],
        tuple(
            ImageSpec(
                name,
                x["tag"],
                x["alias"],
                x["release"],
                x["packages"],
                x["env"],
                x["labels"],
                x["when"],
            )
            for name, x in v["build"].items()
        ),
    )


def _cluster(data: Any, where: s.Where) -> ClusterSpec | None:
    if data is None:
        return None
    v = s.validate(CLUSTER, data, where)
    return ClusterSpec(v["waits"], v["status"])


def _types(tree: dict[str, Any], where: s.Where) -> dict[str, str]:
    out = {}
    for name, kind in vartypes.flatten(tree).items():
        if kind not in vartypes.TYPES:
            raise where.key(name).fail(
                f"unknown type {kind!r}", f"Types: {', '.join(vartypes.TYPES)}."
            )
        out[name] = kind
    return out


def _dirs(items: tuple[dict[str, Any], ...]) -> tuple[DirSpec, ...]:
    return tuple(DirSpec(x["path"], x["mode"], x["owner"]) for x in items)


def _files(
    items: tuple[dict[str, Any], ...], where: s.Where, dirs: list[Path]
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


def _service(name: str, x: dict[str, Any], where: s.Where, dirs: list[Path]) -> ServiceSpec:
    p = x["program"]
    return ServiceSpec(
        name,
        x["packages"],
        _dirs(x["dirs"]),
        _files(x["files"], where.key("files"), dirs),
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


def parse(data: dict[str, Any], d: Path, source: str, base: Stack | None = None) -> Stack:
    where = s.Where(source)
    v = s.validate(STACK, data, where)
    head = s.validate(HEAD, v["stack"], where.key("stack"))
    if not head["name"] and not re.fullmatch(NAME, d.name):
        raise ConfigError(
            source,
            "stack.name",
            f"none, and the folder's name {d.name!r} is not a stack's name ({NAME_RULE})",
            'Name the stack: [stack] name = "mystack".',
        )
    dirs = [d, *((base.dir, *base.search) if base else ())]
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
        {k: x["length"] for k, x in v["secrets"].items()},
        tuple(
            VenvSpec(
                k,
                x["python"],
                x["requirements"],
                x["constraints"],
                x["wheels"],
                x["python_version"],
                x["python_hint"],
                x["check"],
                x["when"],
            )
            for k, x in v["venvs"].items()
        ),
        _dirs(v["dirs"]),
        _files(v["files"], where.key("files"), dirs),
        services,
        notes=head["notes"],
        platforms=head["platforms"],
        platform=v["platform"],
        checkout=None
        if v["checkout"] is None
        else CheckoutSpec(**s.validate(CHECKOUT, v["checkout"], where.key("checkout"))),
        images=_images(v["images"], where.key("images")),
        cluster=_cluster(v["cluster"], where.key("cluster")),
        edit=editspec.parse(v["edit"], where.key("edit")),
    )
    if stack.notes and not any((t / stack.notes).is_file() for t in dirs):
        raise ConfigError(source, "stack.notes", f"template {stack.notes!r} not found in {d}")
    if base is None:
        _check_refs(stack)
    return stack


def _check_refs(stack: Stack) -> None:
    declared = vartypes.flatten(stack.vars)
    for name in stack.types:
        if name not in declared:
            raise ConfigError(stack.source, f"types.{name}", "no such variable under [vars]")
    files = {f.id for f in all_files(stack)}
    venvs = {v.name for v in stack.venvs}
    im = stack.images
    if im is not None and im.before and im.before not in {s.name for s in stack.services}:
        raise ConfigError(stack.source, "images.before", f"no service {im.before!r}")
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
                kind, _, name = ref.rpartition(":")
                if (kind, name in files) != ("", True) and (kind, name in stack.secrets) != (
                    "secret",
                    True,
                ):
                    raise ConfigError(
                        stack.source,
                        f"services.{svc.name}.init.uses",
                        f"{ref!r}: expected a file id or secret:NAME of this stack",
                    )
        for u in svc.uses:
            kind, _, ref = u.partition(":")
            known = {"file": files, "secret": set(stack.secrets), "venv": venvs}[kind]
            if ref not in known:
                raise ConfigError(
                    stack.source, f"services.{svc.name}.uses", f"{u!r} names nothing in this stack"
                )
    editspec.check(stack.edit, [svc.name for svc in stack.services], stack.source)
    ids = [f.id for f in all_files(stack)]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(
            stack.source,
            "files",
            f"duplicate file ids: {', '.join(sorted(dup))}",
            "Give each file a unique `id`.",
        )


def pulling(stack: Stack, refs: tuple[str, ...], source: str) -> Stack:
    """The stack with `[tool.devkit.provision] images` to pull instead of the images it builds."""
    if not refs:
        return stack
    if stack.images is None:
        raise ConfigError(
            source, "tool.devkit.provision.images", f"the stack `{stack.name}` has no [images]"
        )
    return stack._replace(images=stack.images._replace(pull=" ".join(refs)))


def all_files(stack: Stack) -> list[FileSpec]:
    return [*stack.files, *(f for svc in stack.services for f in svc.files)]


def all_dirs(stack: Stack) -> list[DirSpec]:
    return [*stack.dirs, *(d for svc in stack.services for d in svc.dirs)]


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
