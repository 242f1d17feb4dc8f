"""Container images in the stack's Docker engine, made ready before a service starts (the agent):

- built here without a registry: a Debian root filesystem made on this machine (imagefs: debootstrap,
  cached), uploaded and `docker import`ed once as the base, then a Dockerfile of ENV and LABEL lines
  only; a `devkit.image.spec` label says what it was built from, so a second run rebuilds nothing;
- or pulled from their registry by the engine (a host with internet: `[tool.devkit.provision] images`);
- then registered by the stack's own command (Backend.AI's `mgr image rescan` and `alias`) whenever
  the image is new or has changed, or that command has (a fixed one reaches hosts registered before);
- and, on a host whose engine cannot raise its hard rlimits (no CAP_SYS_RESOURCE), a small hook in
  the stack's venv that caps what containers ask for (onhost/rlimits.py), said in `status`.

What was built and registered is recorded in state/images.json; the facts ask the engine that file
names whether the images are still there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from devkit import schema as sch
from devkit.errors import ConfigError, DevkitError, RemoteError
from devkit.provision.kinds.base import (
    LATER,
    ApplyContext,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
    no_check,
    no_diff,
)
from devkit.provision.kinds.programs import ordered
from devkit.provision.onhost import rlimits
from devkit.provision.onhost.facts import read
from devkit.provision.ssh.command import as_user, cat, join, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack.spec import ENV_NAME, Group, Stack
from devkit.provision.transfer import imagefs

NAME = "images"
STATE = "state/images.json"
UPLOADS = "data/images"
HOOK = "_devkit_container_rlimits"  # the module (and .pth) put into the venv's site-packages
SPEC_LABEL = "devkit.image.spec"
HOOK_SOURCE = Path(rlimits.__file__)


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
    """[images]: the container images the stack's Docker engine must have."""

    engine: str  # template: the Docker engine (DOCKER_HOST) the images go into
    before: str  # the service whose start waits for them (else: after the last service)
    hook_venv: str  # where a host whose engine cannot raise rlimits gets the capping hook
    pull: str  # template: registry images to pull instead (whitespace-separated references)
    register: str  # template: run for each image that is new or changed ($DEVKIT_IMAGE_...)
    verify: str  # template: must pass after register
    build: tuple[ImageSpec, ...]


IMAGE = sch.Table(
    sch.Key("tag", sch.string(r".+", "an image tag"), doc="template: the image's tag"),
    sch.Key("alias", sch.string(), "", "template: the name the stack registers it under"),
    sch.Key(
        "release",
        sch.string(r".+", "a Debian release"),
        doc="template: the Debian release of its root filesystem",
    ),
    sch.Key(
        "packages",
        sch.strings(),
        (),
        "templates: what debootstrap includes (one that renders empty is dropped)",
    ),
    sch.Key(
        "env",
        sch.mapping(sch.string(), key=ENV_NAME),
        {},
        "templates: its ENV lines",
    ),
    sch.Key(
        "labels",
        sch.mapping(sch.string(), key=sch.string(r"[A-Za-z0-9][A-Za-z0-9._/-]*", "a label")),
        {},
        "templates: its LABEL lines",
    ),
    sch.Key("when", sch.string(), "", "template: built only when this renders truthy"),
)
IMAGES = sch.Table(
    sch.Key(
        "engine",
        sch.string(r".+", "a Docker engine URL"),
        doc="template: the Docker engine (DOCKER_HOST) the images go into",
    ),
    sch.Key(
        "before",
        sch.string(),
        "",
        "the service whose start waits for them (default: after the last service)",
    ),
    sch.Key(
        "hook_venv",
        sch.string(),
        "",
        "where a host whose engine cannot raise rlimits gets the capping hook",
    ),
    sch.Key(
        "pull",
        sch.string(),
        "",
        "template: registry images to pull instead (whitespace-separated references)",
    ),
    sch.Key(
        "register",
        sch.string(),
        "",
        "template: run for each image that is new or changed ($DEVKIT_IMAGE_...)",
    ),
    sch.Key("verify", sch.string(), "true", "template: must pass after register"),
    sch.Key(
        "build",
        sch.mapping(sch.table(IMAGE), key=sch.string(r"[a-z][a-z0-9_-]*", "an image name")),
        {},
        "images built here without a registry, by name",
    ),
)


SCHEMA = sch.table(IMAGES)


def _parse_group(value: Any, where: sch.Where, dirs: tuple[Path, ...]) -> ImagesSpec | None:
    if value is None:
        return None
    v = SCHEMA(value, where)
    build = tuple(ImageSpec(name, **x) for name, x in v["build"].items())
    return ImagesSpec(**{**v, "build": build})


def spec_of(stack: Stack) -> ImagesSpec | None:
    """The stack's [images], if its Docker engine must have some."""
    return stack.group(NAME)  # type: ignore[no-any-return]


def _check_group(stack: Stack) -> None:
    im = spec_of(stack)
    if im is not None and im.before and im.before not in {svc.name for svc in stack.services}:
        raise ConfigError(stack.source, "images.before", f"no service {im.before!r}")


GROUP = Group(
    NAME,
    _parse_group,
    check=_check_group,
    schema=SCHEMA,
    doc="the container images the stack's Docker engine must have, built here or pulled",
)


def pulling(stack: Stack, refs: tuple[str, ...], source: str) -> Stack:
    """The stack with `[tool.devkit.provision] images` to pull instead of the images it builds."""
    if not refs:
        return stack
    im = spec_of(stack)
    if im is None:
        raise ConfigError(
            source, "tool.devkit.provision.images", f"the stack `{stack.name}` has no [images]"
        )
    return stack._replace(groups={**stack.groups, NAME: im._replace(pull=" ".join(refs))})


class DImage(NamedTuple):
    name: str
    ref: str  # the tag it is built as, or the reference it is pulled by
    alias: str
    source: str  # "build" or "pull"
    spec: str  # what the built image's SPEC_LABEL says (a pulled one: its reference)
    rootfs: imagefs.Rootfs | None = None
    dockerfile: str = ""  # after the FROM line


class DHook(NamedTuple):
    venv: str  # the venv's dir, absolute
    content: str  # the module's source, with the engine's limits
    limits: dict[str, int]


class DImages(NamedTuple):
    engine: str  # DOCKER_HOST
    before: str  # the service whose prestart runs the ops ("" or absent: after the last one)
    images: tuple[DImage, ...]
    register: str
    verify: str
    hook: DHook | None  # None: the engine can raise its rlimits (or nothing to cap in)


class Limits(NamedTuple):
    nofile: int  # hard limits (-1: unlimited)
    memlock: int
    can_raise: bool  # can the engine raise them to the kernel's maximum?


class ImageFacts(NamedTuple):
    # state/images.json: engine, images {ref: {spec, id}}, registered {ref: id}, registered_by
    # {ref: digest of the register command}, aliases {alias: ref}, hook_venv (where the hook went)
    state: dict[str, Any]
    answered: bool  # the recorded engine answered
    present: dict[str, dict[str, str] | None]  # ref -> {id, spec} in the engine (None: absent)
    hook: str  # sha256 of the hook module in hook_venv ("" when there is none)
    hook_venv: str  # the venv looked in: the desired one, else the one the state names
    session: Limits | None  # this SSH session's (what a dockerd devkit starts inherits)
    host_engine: Limits | None  # the host's own dockerd's (/var/run/docker.pid), when readable


# --- facts (collected on the host: stdlib only) -------------------------------------------------


def request(stack: Stack) -> dict[str, Any]:
    # the hook is looked for where the state file says it went; refresh() asks again at the
    # venv it must be in, once the stack is rendered (a checkout's dev venv, or a venv of devkit's)
    return {"state": STATE, "venv": "", "hook": HOOK}


def _docker_get(sock: str, path: str) -> Any:  # runs on the host
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(5)
            self.sock.connect(sock)

    c = Conn("docker")
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    return json.loads(body) if r.status == 200 else None


def _limits_self() -> dict[str, Any]:  # runs on the host
    import resource

    nr_open = int((read("/proc/sys/fs/nr_open") or "1048576").strip() or 1048576)
    out: dict[str, Any] = {"can_raise": True}
    inf = resource.RLIM_INFINITY
    for name, res, top in (
        ("nofile", resource.RLIMIT_NOFILE, nr_open),
        ("memlock", resource.RLIMIT_MEMLOCK, inf),
    ):
        soft, hard = resource.getrlimit(res)
        out[name] = -1 if hard == inf else hard
        if hard != inf and hard < top:
            try:  # harmless: this process ends right after the facts are printed
                resource.setrlimit(res, (soft, top))
            except (ValueError, OSError):
                out["can_raise"] = False
    return out


def _limits_pid(pidfile: str) -> dict[str, Any] | None:  # runs on the host
    pid = (read(pidfile) or "").strip()
    limits, status = read(f"/proc/{pid}/limits"), read(f"/proc/{pid}/status")
    if not pid.isdigit() or not limits or not status:
        return None
    out: dict[str, Any] = {}
    for line in limits.splitlines():
        for name, title in (("nofile", "Max open files"), ("memlock", "Max locked memory")):
            if line.startswith(title):
                hard = line[len(title) :].split()[1]
                out[name] = -1 if hard == "unlimited" else int(hard)
    cap = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("CapEff:")), "0")
    out["can_raise"] = bool(int(cap, 16) >> 24 & 1)  # CAP_SYS_RESOURCE
    return out


def collect(req: dict[str, Any], base: str) -> dict[str, Any]:  # runs on the host
    import glob

    try:
        state = json.loads(read(os.path.join(base, req["state"])) or "{}")
    except ValueError:
        state = {}
    engine = str(state.get("engine") or "")
    present: dict[str, Any] = {}
    answered = False
    if engine.startswith("unix://") and os.path.exists(engine[len("unix://") :]):
        try:
            for ref in state.get("images") or {}:
                info = _docker_get(engine[len("unix://") :], f"/images/{ref}/json")
                labels = ((info or {}).get("Config") or {}).get("Labels") or {}
                present[ref] = (
                    {"id": info["Id"], "spec": labels.get("devkit.image.spec", "")}
                    if info
                    else None
                )
            answered = True
        except (OSError, ValueError, KeyError):
            present, answered = {}, False
    hook = ""
    venv = req["venv"] or str(state.get("hook_venv") or "")
    if venv:
        found = glob.glob(
            os.path.join(venv, "lib", "python*", "site-packages", req["hook"] + ".py")
        )
        text = read(found[0]) if found else None
        hook = hashlib.sha256(text.encode()).hexdigest() if text is not None else ""
    return {
        "state": state,
        "answered": answered,
        "present": present,
        "hook": hook,
        "hook_venv": venv,
        "session": _limits_self(),
        "host_engine": _limits_pid("/var/run/docker.pid"),
    }


REMOTE = (_docker_get, _limits_self, _limits_pid, collect)


def _limits(raw: Any) -> Limits | None:
    if not raw:
        return None
    return Limits(int(raw.get("nofile", -1)), int(raw.get("memlock", -1)), bool(raw["can_raise"]))


def parse(raw: Any) -> ImageFacts:
    raw = raw or {}
    return ImageFacts(
        dict(raw.get("state") or {}),
        bool(raw.get("answered")),
        {str(k): (dict(v) if v else None) for k, v in (raw.get("present") or {}).items()},
        str(raw.get("hook") or ""),
        str(raw.get("hook_venv") or ""),
        _limits(raw.get("session")),
        _limits(raw.get("host_engine")),
    )


def _have(f: Facts) -> ImageFacts:
    """This kind's facts (a host asked with an older request has none: nothing is known)."""
    return f.kinds.get(NAME) or parse({})


# --- desired state --------------------------------------------------------------------------


def dockerfile(env: dict[str, str], labels: dict[str, str]) -> str:
    """ENV and LABEL lines, every key and value double-quoted (JSON's escapes are Dockerfile's)."""
    lines = [f"ENV {k}={json.dumps(v)}" for k, v in env.items()]
    if labels:
        lines.append(
            "LABEL " + " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in labels.items())
        )
    return "".join(line + "\n" for line in lines)


def engine_limits(engine: str, f: Facts) -> Limits | None:
    """What the engine's containers can get: the host's own dockerd's limits when the stack uses
    it, else this SSH session's (the dockerd devkit starts inherits them)."""
    have = _have(f)
    return have.host_engine if engine == f.host.docker and f.host.docker else have.session


def hook_source(limits: dict[str, int]) -> str:
    text = HOOK_SOURCE.read_text(encoding="utf-8")
    line = "LIMITS: dict[str, int] = {}"
    assert line in text, "the hook's LIMITS line moved"
    return text.replace(line, f"LIMITS: dict[str, int] = {json.dumps(limits, sort_keys=True)}", 1)


def pulled(ref: str) -> tuple[str, str, str]:
    """(registry, project, alias) of a registry reference: `cr.backend.ai/stable/python:3.9`
    -> (cr.backend.ai, stable, python); Docker Hub's have no registry part."""
    parts = ref.split("@")[0].split("/")
    first = parts[0]
    registry = (
        first if len(parts) > 1 and ("." in first or ":" in first or first == "localhost") else ""
    )
    path = parts[1:] if registry else parts
    return registry, "/".join(path[:-1]), path[-1].split(":")[0]


def desired(b: Build) -> DImages | None:
    spec = spec_of(b.stack)
    if spec is None:
        return None
    r = b.render.text
    engine = r(spec.engine, "images.engine")
    machine = b.facts.host.machine
    images: list[DImage] = []
    refs = r(spec.pull, "images.pull").split()
    for ref in refs:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*", ref):
            raise DevkitError(
                f"images: {ref!r} is not an image reference",
                "Write it as REGISTRY/PROJECT/NAME:TAG, e.g. cr.backend.ai/stable/python:3.9-ubuntu20.04.",
            )
        images.append(DImage(pulled(ref)[2], ref, pulled(ref)[2], "pull", ref))
    for im in spec.build if not refs else ():
        at = f"images.build.{im.name}"
        if r(im.when, f"{at}.when").strip().lower() in ("false", "0", "no", "none"):
            continue
        # a package that renders empty is dropped (one a release needs and another has not)
        packages = (r(x, f"{at}.packages").strip() for x in im.packages)
        rootfs = imagefs.spec(
            r(im.release, f"{at}.release"), machine, tuple(p for p in packages if p)
        )
        env = {k: r(v, f"{at}.env.{k}") for k, v in im.env.items()}
        labels = {k: r(v, f"{at}.labels.{k}") for k, v in im.labels.items()}
        body = dockerfile(env, labels)
        digest = hashlib.sha256(f"{rootfs.key}\n{body}".encode()).hexdigest()[:16]
        body += dockerfile({}, {SPEC_LABEL: digest})
        images.append(
            DImage(
                im.name,
                r(im.tag, f"{at}.tag"),
                r(im.alias, f"{at}.alias"),
                "build",
                digest,
                rootfs,
                body,
            )
        )
    hook = None
    venv = r(spec.hook_venv, "images.hook_venv").strip()
    lim = engine_limits(engine, b.facts)
    if venv and lim is not None and not lim.can_raise:
        caps = {"nofile": lim.nofile, "memlock": lim.memlock}
        hook = DHook(venv, hook_source(caps), caps)
    return DImages(
        engine,
        spec.before,
        tuple(images),
        r(spec.register, "images.register"),
        r(spec.verify, "images.verify"),
        hook,
    )


def refresh(conn: Connection, d: Desired, f: Facts, ask: Any) -> Facts:
    """Look for the hook in the venv it must be in, known once the stack is rendered."""
    d_im: DImages | None = d.of(NAME)
    if d_im is None or d_im.hook is None or _have(f).hook_venv == d_im.hook.venv:
        return f
    raw = ask(NAME, {**request(None), "venv": d_im.hook.venv})
    return f._replace(kinds={**f.kinds, NAME: parse(raw)})


def register_digest(d: DImages) -> str:
    """What an image was registered by: its command as rendered for this host (not `verify`, which
    names the addresses a cluster changes)."""
    return hashlib.sha256(d.register.encode()).hexdigest()[:16]


def converged(d: DImages) -> dict[str, Any]:
    """The raw facts of a host these images have been made ready on (tests, dry runs)."""
    made = {im.ref: {"spec": im.spec, "id": "sha256:" + im.spec} for im in d.images}
    hook = hashlib.sha256(d.hook.content.encode()).hexdigest() if d.hook else ""
    state = {
        "engine": d.engine,
        "images": made,
        "registered": {r: x["id"] for r, x in made.items()},
        "registered_by": {r: register_digest(d) for r in made},
        "aliases": {im.alias: im.ref for im in d.images if im.alias},
    }
    if d.hook:
        state["hook_venv"] = d.hook.venv
    return {
        "state": state,
        "answered": True,
        "present": made,
        "hook": hook,
        "hook_venv": d.hook.venv if d.hook else "",
    }


# --- plan -----------------------------------------------------------------------------------


def current(d: DImages, f: Facts, ref: str) -> dict[str, str] | None:
    """What the engine has under `ref` ({id, spec}), as far as the facts tell: asked of the engine
    when it answered, else as recorded (a stopped dockerd keeps its images)."""
    have = _have(f)
    if have.state.get("engine") != d.engine:
        return None
    if have.answered:
        return have.present.get(ref)
    return (have.state.get("images") or {}).get(ref)


def _anchor(d: Desired, d_im: DImages, service: str, stage: str) -> bool:
    """Is (service, stage) where the images' ops go? The prestart of `before` when it runs on this
    host, else the poststart of the last service."""
    names = [p.name for p in d.of("programs").programs]
    if d_im.before in names:
        return service == d_im.before and stage == "prestart"
    last = ordered(d.of("programs").programs)[-1].name if names else ""
    return service == last and stage == "poststart"


def _venv_made(d: Desired, f: Facts, path: str) -> bool:
    """Does this run make the venv at `path` (again)? A venv's op (devkit's venvs, a checkout's
    dev venv) comes before the images'."""
    have = f.kinds.get("venvs") or {}
    if any(d.layout.venv(v.name) == path and have.get(v.name) != v.spec for v in d.of("venvs")):
        return True
    dev = d.items.get("devvenv")
    return dev is not None and dev.path == path and f.of("devvenv").spec != dev.spec


def steps(d: Desired, f: Facts, service: str, stage: str) -> list[Op]:
    d_im: DImages | None = d.of(NAME)
    if d_im is None or not _anchor(d, d_im, service, stage):
        return []
    have = _have(f)
    out: list[Op] = []
    want_hook = d_im.hook
    if want_hook is not None and (
        have.hook != hashlib.sha256(want_hook.content.encode()).hexdigest()
        or have.state.get("hook_venv")
        != want_hook.venv  # moved (the wheels' venv <-> a checkout's)
        or _venv_made(d, f, want_hook.venv)  # made again in this run: without the hook
    ):
        caps = ", ".join(f"{k} {v}" for k, v in sorted(want_hook.limits.items()))
        out.append(
            Op(NAME, "rlimit-hook", "install", f"cap container rlimits at {caps}", want_hook)
        )
    elif want_hook is None and have.hook:
        out.append(Op(NAME, "rlimit-hook", "remove", "the engine can raise its rlimits"))
    registered = have.state.get("registered") or {}
    registered_by = have.state.get("registered_by") or {}
    aliases = have.state.get("aliases") or {}
    for im in d_im.images:
        now = current(d_im, f, im.ref)
        fresh = now is None or (im.source == "build" and now.get("spec") != im.spec)
        if fresh:
            what = f"{im.ref} from Debian {im.rootfs.release}" if im.rootfs else f"pull {im.ref}"
            out.append(Op(NAME, f"image:{im.name}", "build" if im.rootfs else "pull", what, im))
        if d_im.register.strip() and (
            fresh
            or now is None
            or registered.get(im.ref) != now.get("id")
            or registered_by.get(im.ref) != register_digest(d_im)
            # the alias was given to another image since (a pulled one, or a build of another tag)
            or (im.alias and aliases.get(im.alias) != im.ref)
        ):
            out.append(Op(NAME, f"image:{im.name}", "register", f"{im.ref} as {im.alias}", im))
    return out


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    return []  # scheduled by the programs kind, in a service's bring-up


# --- apply ----------------------------------------------------------------------------------


def _docker(d_im: DImages, *parts: Any) -> Any:
    return sh(cat("DOCKER_HOST=", q(d_im.engine)), "docker", *parts)


def _state(ctx: ApplyContext) -> dict[str, Any]:
    if NAME not in ctx.state:
        old = _have(ctx.f).state
        d_im: DImages = ctx.d.of(NAME)
        same = old.get("engine") == d_im.engine
        ctx.state[NAME] = {
            "engine": d_im.engine,
            "images": dict(old.get("images") or {}) if same else {},
            "registered": dict(old.get("registered") or {}) if same else {},
            "registered_by": dict(old.get("registered_by") or {}) if same else {},
            "aliases": dict(old.get("aliases") or {}) if same else {},
        }
        if old.get("hook_venv"):
            ctx.state[NAME]["hook_venv"] = old["hook_venv"]
    return ctx.state[NAME]


def _image_id(conn: Connection, d_im: DImages, ref: str, op: str) -> str:
    out = conn.run(_docker(d_im, "image", "inspect", "--format", "'{{.Id}}'", q(ref)), op)
    return out.stdout.strip()


def _build(conn: Connection, op: Op, ctx: ApplyContext, im: DImage) -> None:
    d_im: DImages = ctx.d.of(NAME)
    assert im.rootfs is not None
    base_tag = f"devkit/rootfs:{im.rootfs.key}"
    has_base = conn.run(
        _docker(d_im, "image", "inspect", q(base_tag), ">/dev/null 2>&1"), op.id, check=False
    )
    if has_base.rc != 0:
        local = imagefs.ensure(im.rootfs)
        remote = ctx.d.layout.path(f"{UPLOADS}/{local.name}")
        conn.run(sh("mkdir -p --", q(ctx.d.layout.path(UPLOADS))), op.id)
        conn.put(remote, local.read_bytes(), 0o600, op.id)
        conn.run(
            join(
                [
                    _docker(d_im, "import", q(remote), q(base_tag), ">/dev/null"),
                    sh("rm -f --", q(remote)),
                ]
            ),
            op.id,
        )
    text = f"FROM {base_tag}\n{im.dockerfile}"
    # the classic builder: an ENV/LABEL-only Dockerfile needs no context and no BuildKit
    build = sh(
        "printf '%s'",
        q(text),
        "|",
        cat("DOCKER_BUILDKIT=0 DOCKER_HOST=", q(d_im.engine)),
        "docker build -q -t",
        q(im.ref),
        "- >/dev/null",
    )
    conn.run(build, op.id)
    _state(ctx)["images"][im.ref] = {"spec": im.spec, "id": _image_id(conn, d_im, im.ref, op.id)}


def _pull(conn: Connection, op: Op, ctx: ApplyContext, im: DImage) -> None:
    d_im: DImages = ctx.d.of(NAME)
    conn.run(_docker(d_im, "pull", "-q", q(im.ref), ">/dev/null"), op.id)
    _state(ctx)["images"][im.ref] = {"spec": im.spec, "id": _image_id(conn, d_im, im.ref, op.id)}


def _register(conn: Connection, op: Op, ctx: ApplyContext, im: DImage) -> None:
    d, d_im = ctx.d, ctx.d.of(NAME)
    state = _state(ctx)
    known = state["images"].get(im.ref) or current(d_im, ctx.f, im.ref) or {}
    image_id = known.get("id") or _image_id(conn, d_im, im.ref, op.id)
    registry, project, _ = pulled(im.ref) if im.source == "pull" else ("", "", "")
    env = {
        "DEVKIT_IMAGE": im.ref,
        "DEVKIT_IMAGE_ALIAS": im.alias,
        "DEVKIT_IMAGE_ID": image_id,
        "DEVKIT_IMAGE_SOURCE": im.source,
        "DEVKIT_IMAGE_REGISTRY": registry,
        "DEVKIT_IMAGE_PROJECT": project,
        "DEVKIT_IMAGE_ARCH": ctx.f.host.machine,
    }
    exports = [cat(k, "=", q(v)) for k, v in env.items()]
    body = as_user(sh(d_im.register), "", d.user, d.is_root)
    verify = as_user(sh(d_im.verify), "", d.user, d.is_root)
    cmd = join(
        [
            sh("cd", q(d.layout.base)),
            sh("export", *exports),
            body,
            sh(
                "{",
                verify,
                "|| {",
                "echo",
                q("verify failed: " + d_im.verify),
                ">&2; exit 97; }; }",
            ),
        ]
    )
    conn.run(
        cmd.labelled(f"register {im.ref} ({d_im.register.strip().splitlines()[0][:60]})"), op.id
    )
    state["registered"][im.ref] = image_id
    state["registered_by"][im.ref] = register_digest(d_im)
    if im.alias:
        state["aliases"][im.alias] = im.ref


def _drop_hook(conn: Connection, venv: str, op_id: str) -> None:
    """The hook out of that venv, if it (still) is there."""
    site = (q(f"{venv}/lib/"), "python*/site-packages/", HOOK)  # the glob unquoted
    conn.run(sh("rm -f --", cat(*site, ".pth"), cat(*site, ".py")), op_id)


def _hook(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    state = _state(ctx)
    old = str(_have(ctx.f).state.get("hook_venv") or "")
    hook: DHook | None = op.item
    if old and (hook is None or old != hook.venv):
        _drop_hook(conn, old, op.id)
    state.pop("hook_venv", None)
    if hook is None:
        return
    py = q(f"{hook.venv}/bin/python")
    where = conn.run(
        sh(py, "-I -c", q("import sysconfig; print(sysconfig.get_path('purelib'))")), op.id
    ).stdout.strip()
    conn.put(f"{where}/{HOOK}.py", hook.content.encode(), 0o644, op.id)
    conn.put(f"{where}/{HOOK}.pth", f"import {HOOK}\n".encode(), 0o644, op.id)
    state["hook_venv"] = hook.venv


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    if op.id == "rlimit-hook":
        _hook(conn, op, ctx)
    elif op.action == "build":
        _build(conn, op, ctx, op.item)
    elif op.action == "pull":
        _pull(conn, op, ctx, op.item)
    else:
        _register(conn, op, ctx, op.item)


def finish(conn: Connection, ctx: ApplyContext) -> None:
    """Record what was built and registered (also after a failure: what got done is kept)."""
    if NAME in ctx.state:
        data = (json.dumps(ctx.state[NAME], indent=1, sort_keys=True) + "\n").encode()
        try:
            conn.put(ctx.d.layout.path(STATE), data, 0o644, "state")
        except RemoteError:
            pass  # connection gone: the next run asks the engine again


# --- status ---------------------------------------------------------------------------------


def notes(f: Facts) -> list[str]:
    """What `devkit status` says about the images and the rlimit hook, from the facts alone."""
    have = _have(f)
    out = []
    registered = have.state.get("registered") or {}
    for ref, info in sorted((have.state.get("images") or {}).items()):
        there = have.present.get(ref) if have.answered else info
        where = "" if there else " (MISSING from the engine: `devkit provision` builds it again)"
        reg = ", registered" if registered.get(ref) == (info or {}).get("id") else ""
        out.append(f"image {ref} {str((info or {}).get('id', ''))[7:19]}{reg}{where}")
    if have.hook:
        lim = engine_limits(str(have.state.get("engine") or ""), f) or have.session
        caps = f"nofile {lim.nofile}, memlock {lim.memlock}" if lim else "the engine's limits"
        out.append(
            "containers: this host's Docker engine cannot raise its hard rlimits (no "
            f"CAP_SYS_RESOURCE): devkit's hook in the venv caps what containers ask for at {caps}"
        )
    return out


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
check = no_check
diff = no_diff
