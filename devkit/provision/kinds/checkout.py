"""The source a stack runs from: a git checkout on the host, where a person would open it.

`[checkout] source` says where the code comes from: a git URL with a ref (`URL@REF`, cloned on the
host), a git bundle or a repository on this machine (`PATH@REF`, sent to the host as a bundle over
the same connection), `local` (the clone devkit is run from: its current branch is pushed to the
host over the same connection, as `devkit sync` does, each time it has moved), or nothing (`pypi`,
`none`: released wheels, no checkout). The checkout is the contributor's: devkit clones it once and
records what it checked out; later it moves HEAD only when the requested source or ref changes, and
never over local commits or uncommitted changes (a push refuses, listing them).

A checkout is made before anything else (its kind is stage 0): the engine then looks at the host
again, so the interpreter, the dev venv and the services are planned from the checkout itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from devkit import schema as s
from devkit.errors import DevkitError, RemoteError
from devkit.provision.kinds import dirs, packages
from devkit.provision.kinds import edit as edit_kind
from devkit.provision.kinds.base import (
    SOURCE,
    ApplyContext,
    Ask,
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
from devkit.provision.onhost.edit import report as edit_report
from devkit.provision.onhost.facts import read, run, source_facts
from devkit.provision.ssh.command import as_user, join, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.source import WHEELS, Code, Source
from devkit.provision.stack.source import parse as parse_source
from devkit.provision.stack.source import read as read_source
from devkit.provision.stack.spec import Group, Stack

NAME = "checkout"
STAGE = SOURCE  # before every other kind: what they plan depends on it
STATE = "state/checkout.json"  # what devkit checked out, and from where


class CheckoutSpec(NamedTuple):
    """[checkout]: where the stack's code comes from, when not from released wheels."""

    source: str  # template: "pypi"/"none", "URL[@REF]", "PATH[@REF]" (a bundle or repository here)
    path: str  # template: where the checkout lives on the host (absolute)
    venv: str  # template: the dev venv, relative to the checkout ("" = none)
    requirements: str  # relative to the checkout
    lock: str  # relative to the checkout: Pants' JSON lock or uv's TOML lock
    fixes: tuple[str, ...]  # templates: pins that replace the lock's (known fixes per line)
    lfs_wheels: tuple[str, ...]  # distributions on PyPI that carry the repository's LFS files


CHECKOUT = s.Table(
    s.Key(
        "source",
        s.string(),
        doc='template: "pypi" or "none", "URL[@REF]", "PATH[@REF]" (a bundle or repository here)',
    ),
    s.Key("path", s.string(), doc="template: where the checkout lives on the host (absolute)"),
    s.Key("venv", s.string(), "", "template: the dev venv, relative to the checkout (none: empty)"),
    s.Key("requirements", s.string(), "requirements.txt", "relative to the checkout"),
    s.Key(
        "lock",
        s.string(),
        "python.lock",
        "relative to the checkout: Pants' JSON lock or uv's TOML lock",
    ),
    s.Key("fixes", s.strings(), (), "templates: pins that replace the lock's (known fixes)"),
    s.Key(
        "lfs_wheels",
        s.strings(),
        (),
        "distributions on PyPI that carry the repository's Git LFS files",
    ),
)


SCHEMA = s.table(CHECKOUT)


def _parse_group(value: Any, where: s.Where, dirs: tuple[Path, ...]) -> CheckoutSpec | None:
    return None if value is None else CheckoutSpec(**SCHEMA(value, where))


GROUP = Group(
    NAME,
    _parse_group,
    schema=SCHEMA,
    doc="where the stack's code comes from when it runs from a checkout, not released wheels",
)


def spec_of(stack: Stack) -> CheckoutSpec | None:
    """The stack's [checkout], if it can run from one."""
    return stack.group(NAME)  # type: ignore[no-any-return]


class DCheckout(NamedTuple):
    path: str  # absolute, on the host
    source: Source
    python: str = ""  # the CPython its pants.toml asks for ("" while not known)
    version: str = ""  # its VERSION


class CheckoutFacts(NamedTuple):
    exists: bool  # a git work tree is there
    head: str  # its commit
    branch: str  # its branch ("" when detached)
    dirty: tuple[str, ...]  # `git status --porcelain` lines
    recorded: dict[str, str]  # what devkit checked out last: source, ref, commit
    python: str  # the interpreter pants.toml asks for ("3.11.8"), "" when unknown
    version: str  # the VERSION file
    pins: str  # a hash of the pins (requirements.txt and the lock): the dev venv follows it


def request(stack: Stack) -> dict[str, str]:
    return {"state": STATE}


def collect(req: dict[str, str], base: str) -> dict[str, Any]:  # runs on the host
    try:
        recorded = json.loads(read(os.path.join(base, req["state"])) or "{}")
    except ValueError:
        recorded = {}
    path = recorded.get("path") or req.get("path", "")
    out: dict[str, Any] = {"recorded": recorded, "exists": False}
    if not path or not os.path.isdir(os.path.join(path, ".git")):
        return out

    def git(*args: str) -> str:
        rc, text = run(["git", "-C", path, *args], timeout=30)
        return text.strip() if rc == 0 else ""

    out["exists"] = True
    out["head"] = git("rev-parse", "HEAD")
    out["branch"] = git("symbolic-ref", "--short", "-q", "HEAD")
    out["dirty"] = [line for line in git("status", "--porcelain").splitlines() if line]
    out.update(source_facts(lambda name: read(os.path.join(path, name))))
    return out


REMOTE = (collect,)


def parse(raw: Any) -> CheckoutFacts:
    return CheckoutFacts(
        bool(raw.get("exists")),
        str(raw.get("head") or ""),
        str(raw.get("branch") or ""),
        tuple(raw.get("dirty") or ()),
        {str(k): str(v) for k, v in (raw.get("recorded") or {}).items()},
        str(raw.get("python") or ""),
        str(raw.get("version") or ""),
        str(raw.get("pins") or ""),
    )


def code(spec_text: str, have: CheckoutFacts, where: str) -> Code:
    """The source `spec_text` names, parsed (once per run: the engine's source stage) with what it
    brings: the host's checkout as it is when that is this source (or one devkit adopts as it is),
    else its ref read here; unknown for a URL not cloned yet."""
    source = parse_source(spec_text, where)
    if source is None:
        return WHEELS
    rec = have.recorded
    if have.exists and have.version:
        ours = (
            have.head == source.commit
            if source.kind == "local"
            else not rec or (rec.get("source"), rec.get("ref")) == (source.location, source.ref)
        )
        if ours:
            return Code(source, have.version, have.python, have.pins)
    return read_source(source)


def path_of(stack: Stack, text: Callable[[str, str], str]) -> str:
    """Where the checkout lives on the host: [checkout] path rendered with `text`."""
    spec = spec_of(stack)
    path = text(spec.path, "checkout.path") if spec else ""
    if not path.startswith("/"):
        raise not_absolute(stack, path)
    return path


def not_absolute(stack: Stack, path: str) -> DevkitError:
    return DevkitError(f"{stack.source}: checkout.path: `{path}` is not an absolute path")


def desired(b: Build) -> DCheckout | None:
    if b.code.source is None:
        return None
    return DCheckout(path_of(b.stack, b.render.text), b.code.source, b.code.python, b.code.version)


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    want: DCheckout | None = d.of(NAME)
    have: CheckoutFacts = f.of(NAME)
    if want is None:
        return []
    src = want.source
    if src.kind == "local":
        what = f"{src.ref or 'HEAD'} ({src.commit[:10]}) of {src.location}"
        if have.exists and have.head == src.commit:
            if have.recorded.get("source") == src.location:
                return []
            return [Op(NAME, "checkout", "adopt", f"{want.path} has {what} already", want)]
        return [Op(NAME, "checkout", "push", f"{what} into {want.path}", want)]
    if not have.exists:
        return [Op(NAME, "checkout", "clone", f"{want.source.spec} into {want.path}", want)]
    rec = have.recorded
    if not rec:
        return [Op(NAME, "checkout", "adopt", f"{want.path} (made by hand: kept as it is)", want)]
    if rec.get("source") == want.source.location and rec.get("ref") == want.source.ref:
        return []  # as devkit left it, or as the contributor moved it since: theirs now
    detail = f"{rec.get('source', 'a checkout devkit did not make')} -> {want.source.spec}"
    return [Op(NAME, "checkout", "switch", detail, want)]


def refresh(conn: Connection, d: Desired, f: Facts, ask: Ask) -> Facts:
    """Look at the checkout's path as the stack renders it (the facts script only knew the path
    devkit recorded, if any): a checkout made there by hand is adopted, never cloned over."""
    want: DCheckout | None = d.of(NAME)
    if want is None or f.of(NAME).recorded.get("path") == want.path:
        return f
    raw = ask(NAME, {"state": STATE, "path": want.path})
    return f._replace(kinds={**f.kinds, NAME: parse(raw)})


def check(conn: Connection, ops: list[Op], ctx: ApplyContext) -> None:
    """Before anything changes: the host has the interpreter the source's pants.toml asks for
    (read here, from a bundle or a repository on this machine), and a switch finds the checkout
    as devkit left it."""
    for op in ops:
        if op.kind != NAME:
            continue
        want: DCheckout = op.item
        have: CheckoutFacts = ctx.f.of(NAME)
        if op.action == "switch":
            moved = have.head != have.recorded.get("commit")
            if have.dirty or moved:
                what = (
                    f"{len(have.dirty)} uncommitted change(s)"
                    if have.dirty
                    else f"HEAD moved to {have.head[:10]}"
                )
                raise RemoteError(
                    conn.name,
                    op.id,
                    f"the checkout at {want.path} has {what}: devkit will not switch it to "
                    f"{want.source.spec}",
                    hint="Commit or stash your work there (or give the source it has), then run "
                    "devkit provision again.",
                )
        if want.python:
            need_interpreter(conn.name, op.id, want.python, ctx.f.host, want.version)


def need_interpreter(host_name: str, op: str, version: str, host: Any, release: str = "") -> None:
    """Stops with the version needed and where to get it when the host has no python3.X of the
    checkout's pants.toml (`release`: the checkout's VERSION, to say which one it is)."""
    minor = ".".join(version.split(".")[:2])
    if minor in host.pythons:
        return
    os_name = host.os.get("name") or "this host"
    have = ", ".join(f"Python {v}" for v in host.pythons) or "no python3.X"
    hint = {
        "3.11": "Debian 12 has it (python3.11 python3.11-venv); a bookworm sandbox: "
        "devkit sandbox up NAME --release bookworm.",
        "3.13": "Debian 13 has it (python3.13 python3.13-venv); a trixie sandbox: "
        "devkit sandbox up NAME --release trixie.",
    }.get(minor, f"Install python{minor} and python{minor}-venv (deadsnakes on Ubuntu).")
    raise RemoteError(
        host_name,
        op,
        f"the checkout{f' (VERSION {release})' if release else ''} needs Python {minor} "
        f"(its pants.toml asks for CPython {version}); "
        f"{os_name} has {have}",
        hint=hint,
    )


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    want: DCheckout = op.item
    d = ctx.d
    src = want.source
    # what a clone needs before the other kinds have run: git (and git-lfs, whose filter keeps the
    # LFS files devkit fills in from showing as changes), and devkit's folders in the base dir
    tools = sh("command -v git >/dev/null && command -v git-lfs >/dev/null")
    conn.run(sh(tools, "||", packages.install(("git", "git-lfs"), d.is_root)), op.id)
    mkdirs = sh("mkdir -p --", q(d.layout.path("state")), q(d.layout.path(layout.CACHE)))
    conn.run(join([dirs.claim(d.layout.base), mkdirs]), op.id)
    if op.action == "adopt":
        _record(conn, op, ctx, want)
        return
    if op.action == "push":
        _push(conn, op, ctx, want)
        _record(conn, op, ctx, want)
        return
    if src.kind == "url":
        fetch_from, origin = src.location, src.location
    else:
        bundle = _bundle(src) if src.kind == "repo" else Path(src.location)
        remote = d.layout.path(f"{layout.CACHE}/{want.path.strip('/').replace('/', '_')}.bundle")
        conn.put(remote, bundle.read_bytes(), 0o640, op.id)
        fetch_from, origin = remote, remote
        if src.kind == "repo":
            bundle.unlink()
    branch = ["--branch", q(src.ref)] if src.ref else []
    # LFS files stay pointers here: a bundle or a mirror has no LFS server to smudge from, and
    # the lfs kind fills them in (git lfs pull, else the wheels they were built into)
    no_smudge = sh("export GIT_LFS_SKIP_SMUDGE=1")
    if op.action == "clone":
        cmd = join(
            [
                no_smudge,
                sh("mkdir -p --", q(os.path.dirname(want.path))),
                sh("git clone -q", *branch, "--", q(fetch_from), q(want.path)),
                sh("git -C", q(want.path), "remote set-url origin", q(origin)),
                sh("git -C", q(want.path), "lfs install --local >/dev/null"),
            ]
        )
    else:
        target = q(src.ref) if src.ref else "origin/HEAD"
        cmd = join(
            [
                no_smudge,
                sh("git -C", q(want.path), "remote set-url origin", q(fetch_from)),
                sh("git -C", q(want.path), "fetch -q origin"),
                sh("git -C", q(want.path), "checkout -q", target),
                sh("git -C", q(want.path), "remote set-url origin", q(origin)),
            ]
        )
    conn.run(as_user(cmd, "", d.user, d.is_root), op.id)
    _record(conn, op, ctx, want)


def _push(conn: Connection, op: Op, ctx: ApplyContext, want: DCheckout) -> None:
    """The local branch (its commits, not the uncommitted work: `devkit sync` sends that) into the
    host's checkout; where the stack runs already, the services its files changed restart."""
    from devkit.provision.transfer import gitpush

    d = ctx.d
    find = None
    programs = ctx.f.of("programs")
    if programs.running and any(x.state == "RUNNING" for x in programs.programs.values()):
        # the stack runs: the edit loop's rules (written now if this run brings them) say which
        # services the pushed files restart, under the edit lock, as `devkit sync` does
        for f in d.of("files"):
            if f.id in (edit_kind.RULES_ID, edit_kind.SCRIPT_ID):
                conn.put(d.layout.path(f.dest), f.content.encode(), f.mode, op.id, f.owner)
        find = {"base": d.layout.base, "host": conn.name, "stack": d.stack}
    try:
        pushed = gitpush.push(
            conn,
            Path(want.source.location),
            want.path,
            find=find,
            init=True,
            include_uncommitted=False,
        )
    except gitpush.SyncRefused as exc:  # the host's name is the error's own prefix already
        message = exc.message.removeprefix(f"{conn.name}: ")
        raise RemoteError(conn.name, op.id, message, hint=exc.hint) from None
    except DevkitError as exc:
        raise RemoteError(conn.name, op.id, exc.message, hint=exc.hint) from None
    # origin: where the local clone's branch comes from, when the host can reach it too
    origin = subprocess.run(
        ["git", "-C", want.source.location, "remote", "get-url", "origin"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if re.match(r"^(https?|ssh|git)://|^[\w.-]+@[\w.-]+:", origin):
        add = sh(
            "git -C",
            q(want.path),
            "remote get-url origin >/dev/null 2>&1 ||",
            "git -C",
            q(want.path),
            "remote add origin",
            q(origin),
        )
        conn.run(add, op.id)
    notes = ctx.state.setdefault("notes", [])
    notes += gitpush.describe(pushed, conn.name)
    if pushed.then:  # what the push restarted (the stack runs), as `devkit sync` says it
        notes += edit_report.describe(pushed.then, conn.name)


def _record(conn: Connection, op: Op, ctx: ApplyContext, want: DCheckout) -> None:
    head = conn.run(sh("git -C", q(want.path), "rev-parse HEAD"), op.id).stdout.strip()
    src = want.source
    record = {"path": want.path, "source": src.location, "ref": src.ref, "commit": head}
    # the LFS files no source had: still named, not looked for again, while they are the same
    lfs = ctx.f.of(NAME).recorded.get("lfs_unresolved")
    save_record(conn, op.id, ctx.d, {**record, **({"lfs_unresolved": lfs} if lfs else {})})


def save_record(conn: Connection, op: str, d: Desired, record: dict[str, str]) -> None:
    """What devkit did to the checkout (state/checkout.json), for the next run to read."""
    conn.put(d.layout.path(STATE), json.dumps(record, indent=1).encode() + b"\n", 0o640, op)


def _bundle(src: Source) -> Path:
    """A bundle of the ref (else HEAD) of a repository on this machine, to send to the host."""
    fd, name = tempfile.mkstemp(prefix="devkit-", suffix=".bundle")
    os.close(fd)
    ref = src.ref or "HEAD"
    r = subprocess.run(
        ["git", "-C", src.location, "bundle", "create", name, ref, "--branches", "--tags"],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        os.unlink(name)
        raise DevkitError(f"cannot bundle {src.spec}: {r.stderr.strip().splitlines()[-1:]}")
    return Path(name)


# the hooks this kind does without (base.py's defaults)
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
