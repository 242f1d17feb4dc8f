"""What every resource kind shares: the records that flow through the engine and the Kind protocol.

A kind is a module (pre-commit's languages, pyinfra's facts + operations in one place) with:
  NAME                      its key in the registry, the facts and the desired state
  STAGE                     SOURCE for the kind applied before the others are planned (the
                            checkout the rest is planned from); LATER for the rest
  GROUP                     the stack.toml group it owns (a stack.spec.Group), or None
  request(stack)            what to ask the host about (JSON; paths relative to the base dir)
  collect(req, base)        runs ON THE HOST (stdlib only, helpers from devkit.provision.onhost.facts);
                            REMOTE lists it and any helper it calls (shipped as source)
  parse(raw)                the collector's JSON as the kind's typed facts
  desired(build)            the kind's desired state, rendered from the stack
  plan(d, f, state)         the ops that would change something (none on a converged host)
  apply(conn, op, ctx)      the commands and file writes of one op
  refresh(conn, d, f, ask)  a second look once the stack is rendered
  check(conn, ops, ctx)     before any op runs: what would make the run fail half-way
  finish(conn, ctx)         after the last op (a failed one too): records what was done
  diff(conn, op, d)         what a dry run shows of an op
  steps(d, f, service, stage)  the ops of a service's bring-up (before or after it starts)
  notes(f)                  lines `devkit status` adds about the host
Every module spells every hook; one it does without is this module's default (pre-commit's
languages do the same with lang_base's `basic_*`), so the engine never asks whether a kind has it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from devkit.provision.ssh.connection import Connection
from devkit.provision.stack.layout import Layout
from devkit.provision.stack.source import WHEELS, Code
from devkit.provision.stack.spec import Group, Stack


def truthy(rendered: str) -> bool:
    """A rendered `when`: false for "", "false", "0", "no", "none" (any case)."""
    return rendered.strip().lower() not in ("", "false", "0", "no", "none")


class Op(NamedTuple):
    kind: str  # the resource kind that plans and applies it
    id: str  # stable, from the stack: "file:redis.conf", "program:redis", "init:postgres.initdb"
    action: str  # install, create, update, chmod, chown, run, start, restart, remove, ...
    detail: str  # one line for people
    item: Any = None  # the kind's desired item this op brings about


class HostInfo(NamedTuple):
    user: str
    uid: int
    home: str
    base: str  # the stack's base dir, absolute
    os: Mapping[str, str] = {}
    python: str = "3"  # the host's python3 version
    machine: str = "x86_64"
    listening: tuple[int, ...] = ()  # TCP ports something listens on (this host's netns)
    docker: str = ""  # the host's own Docker engine (unix:// URL) when it answers, else ""
    init: str = ""  # what runs as PID 1 ("systemd" where the stack can start at boot)
    docker_now: str = ""  # the engine that answers now (`docker` is the one first recorded)
    postgres: tuple[str, ...] = ()  # PostgreSQL majors installed, oldest first
    postgres_candidate: str = ""  # the major `postgresql` would install (when none is)
    pythons: tuple[str, ...] = ()  # "3.11", ... : the distribution's python3.X binaries
    address: str = ""  # the address SSH reached it at ("" when unknown)
    base_real: str = ""  # the base dir with its links followed ("" when unknown)
    # which files it sees: its kernel's boot and its mount namespace ("" when unknown); two hosts
    # with the same see one filesystem (network-namespace hosts of one machine)
    filesystem: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> HostInfo:
        return cls(
            str(raw["user"]),
            int(raw["uid"]),
            str(raw["home"]),
            str(raw["base"]),
            dict(raw.get("os") or {}),
            str(raw.get("python") or "3"),
            str(raw.get("machine") or "x86_64"),
            tuple(int(p) for p in raw.get("listening") or ()),
            str(raw.get("docker") or ""),
            str(raw.get("init") or ""),
            str(raw.get("docker_now") or ""),
            tuple(str(v) for v in raw.get("postgres") or ()),
            str(raw.get("postgres_candidate") or ""),
            tuple(str(v) for v in raw.get("pythons") or ()),
            str(raw.get("address") or ""),
            str(raw.get("base_real") or ""),
            str(raw.get("filesystem") or ""),
        )

    @classmethod
    def assumed(cls, user: str, base: str = "/base") -> HostInfo:
        """A host not asked yet (ssh-config): what renders the stack's ports without facts."""
        return cls(user, 1000, f"/home/{user}", base, postgres_candidate="unknown")


class Facts(NamedTuple):
    host: HostInfo
    kinds: Mapping[str, Any]  # kind name -> that kind's typed facts

    def of(self, kind: str) -> Any:
        return self.kinds[kind]


class Desired(NamedTuple):
    layout: Layout
    user: str
    is_root: bool
    stack: str
    items: Mapping[str, Any]  # kind name -> that kind's desired state
    secrets: Mapping[str, str]  # every value to mask in what people see
    notes: str = ""  # what to tell the user once the host is provisioned
    stack_dir: str = ""  # where the stack comes from, when it is not one of devkit's own

    def of(self, kind: str) -> Any:
        return self.items[kind]


# a kind's second look at the host: (kind name, its request) -> its collector's raw answer
Ask = Callable[[str, Any], Any]


class Render(NamedTuple):
    """Renders a stack's template strings and files with one host's variables."""

    text: Callable[[str, str], str]  # (template text, where it is in stack.toml) -> text
    file: Callable[[str], str]  # template file name -> text
    login: str  # the login user: an owner or user that renders empty means them
    # (a refused value, the check that refused it) -> the variable it came from (render.blame)
    blame: Callable[[str, Any], str] = lambda value, check: ""

    def who(self, text: str, where: str) -> str:
        return self.text(text, where) or self.login


class Build(NamedTuple):
    """What a kind's desired() sees: the stack (services already filtered by `when`), the
    renderer, the host's facts, the kinds built before it (in registry order), and the code the
    source stage settled on."""

    stack: Stack
    render: Render
    facts: Facts
    layout: Layout
    secrets: Mapping[str, str]
    built: dict[str, Any]
    code: Code = WHEELS
    # a cluster's shared folder as the other hosts of the run see it (kinds/cluster.py: an Offer on
    # the manager host, a Source on an agent host); None for a host on its own
    share: Any = None


# a kind whose ops run around a service's start: (desired, facts, service, stage) -> its ops
Steps = Callable[["Desired", "Facts", str, str], list[Op]]


class PlanState(NamedTuple):
    """What an earlier kind's plan tells a later one (the files it rewrites), and the kinds
    whose ops belong to a service's prestart and poststart stages."""

    changed_files: set[str]
    steps: tuple[Steps, ...] = ()


class ApplyContext:
    """One host's apply run: the desired state, the facts it was planned from, and what the
    kinds record as they go (the programs' applied hashes)."""

    def __init__(self, d: Desired, f: Facts, wheelhouse: str = "") -> None:
        self.d, self.f, self.wheelhouse = d, f, wheelhouse
        self.state: dict[str, Any] = {}


SOURCE, LATER = 0, 1  # a kind's STAGE


# the defaults of the hooks a kind does without


def no_refresh(conn: Connection, d: Desired, f: Facts, ask: Ask) -> Facts:
    return f


def no_check(conn: Connection, ops: list[Op], ctx: ApplyContext) -> None:
    return None


def no_finish(conn: Connection, ctx: ApplyContext) -> None:
    return None


def no_diff(conn: Connection, op: Op, d: Desired) -> str:
    return ""


def no_steps(d: Desired, f: Facts, service: str, stage: str) -> list[Op]:
    return []


def no_notes(f: Facts) -> list[str]:
    return []


class Kind(Protocol):
    """A resource kind module (tests/unit/test_registry_kinds.py holds every kind to it)."""

    NAME: str
    STAGE: int
    GROUP: Group | None
    REMOTE: tuple[Callable[..., Any], ...]

    def request(self, stack: Stack) -> Any: ...
    def collect(self, req: Any, base: str) -> Any: ...
    def parse(self, raw: Any) -> Any: ...
    def desired(self, b: Build) -> Any: ...
    def plan(self, d: Desired, f: Facts, state: PlanState) -> list[Op]: ...
    def apply(self, conn: Connection, op: Op, ctx: ApplyContext) -> None: ...
    def refresh(self, conn: Connection, d: Desired, f: Facts, ask: Ask) -> Facts: ...
    def check(self, conn: Connection, ops: list[Op], ctx: ApplyContext) -> None: ...
    def finish(self, conn: Connection, ctx: ApplyContext) -> None: ...
    def diff(self, conn: Connection, op: Op, d: Desired) -> str: ...
    def steps(self, d: Desired, f: Facts, service: str, stage: str) -> list[Op]: ...
    def notes(self, f: Facts) -> list[str]: ...
