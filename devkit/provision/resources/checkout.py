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

import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from devkit.errors import DevkitError, RemoteError
from devkit.provision import editspec, layout
from devkit.provision.command import as_user, join, q, sh
from devkit.provision.connection import Connection
from devkit.provision.remote import read, run
from devkit.provision.resources import dirs, packages
from devkit.provision.resources.base import (
    ApplyContext,
    Ask,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
)

NAME = "checkout"
STAGE = 0  # before every other kind: what they plan depends on it
STATE = "state/checkout.json"  # what devkit checked out, and from where
NONE = ("", "none", "pypi")


class Source(NamedTuple):
    kind: str  # "url", "bundle" (a file here), "repo" (a repository here), "local" (pushed)
    location: str  # the URL, or an absolute path on this machine
    ref: str  # the branch or tag to check out ("" = the source's default)
    commit: str = ""  # local: the commit of that branch here, which the host's checkout follows

    @property
    def spec(self) -> str:
        return f"{self.location}@{self.ref}" if self.ref else self.location


class DCheckout(NamedTuple):
    path: str  # absolute, on the host
    source: Source


class CheckoutFacts(NamedTuple):
    exists: bool  # a git work tree is there
    head: str  # its commit
    branch: str  # its branch ("" when detached)
    dirty: tuple[str, ...]  # `git status --porcelain` lines
    recorded: dict[str, str]  # what devkit checked out last: source, ref, commit
    python: str  # the interpreter pants.toml asks for ("3.11.8"), "" when unknown
    version: str  # the VERSION file
    pins: str  # a hash of the pins (requirements.txt and the lock): the dev venv follows it


def parse_source(text: str, where: str) -> Source | None:
    """`URL[@REF]` or `PATH[@REF]` (a bundle or a repository on this machine); None for no checkout."""
    text = text.strip()
    if text.lower() in NONE:
        return None
    if text.lower() == "local":
        return local_source(Path.cwd(), where)
    location, ref = text, ""
    at = text.rfind("@")
    if at > 0 and "/" not in text[at:] and not text[:at].endswith(":"):
        location, ref = text[:at], text[at + 1 :]
    if ref and not re.fullmatch(r"[A-Za-z0-9._/-]+", ref):
        raise DevkitError(f"{where}: `{ref}` is not a branch or tag name")
    if re.match(r"^(https?|ssh|git)://", location) or re.match(r"^[\w.-]+@[\w.-]+:", location):
        return Source("url", location, ref)
    path = Path(location).expanduser()
    if path.is_file():
        return Source("bundle", str(path.resolve()), ref)
    if (path / ".git").exists() or (path / "HEAD").is_file():
        return Source("repo", str(path.resolve()), ref)
    raise DevkitError(
        f"{where}: `{location}` is neither a git URL nor a bundle or repository on this machine",
        "Give https://host/org/repo@REF, /path/to/repo@REF or /path/to/file.bundle@REF "
        '(or "pypi" for the released wheels).',
    )


def local_source(path: Path, where: str) -> Source:
    """The clone at (or above) path: its branch and commit, pushed to the host as they are."""

    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "-q", "--verify", "HEAD^{commit}")
    if not top or not commit:
        raise DevkitError(
            f"{where}: `local` is the git clone devkit is run from, and {path} is not in one "
            "(or it has no commit yet)",
            "Run devkit from your clone of the project, or give PATH@REF or URL@REF.",
        )
    return Source("local", top, git("symbolic-ref", "-q", "--short", "HEAD"), commit)


def request(stack: Any) -> dict[str, str]:
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
    pants = read(os.path.join(path, "pants.toml")) or ""
    found = re.search(r'interpreter_constraints\s*=\s*\[\s*"CPython==([0-9.]+)"', pants)
    out["python"] = found.group(1) if found else ""
    out["version"] = (read(os.path.join(path, "VERSION")) or "").strip()
    h = hashlib.sha256()
    for name in ("requirements.txt", "python.lock"):
        h.update(name.encode() + b"\0" + (read(os.path.join(path, name)) or "").encode() + b"\0")
    out["pins"] = h.hexdigest()[:16]
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


def desired(b: Build) -> DCheckout | None:
    spec = b.stack.checkout
    if spec is None:
        return None
    r = b.render.text
    source = parse_source(r(spec.source, "checkout.source"), f"{b.stack.source}: checkout.source")
    if source is None:
        return None
    path = r(spec.path, "checkout.path")
    if not path.startswith("/"):
        raise DevkitError(f"{b.stack.source}: checkout.path: `{path}` is not an absolute path")
    return DCheckout(path, source)


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
        wanted = python_of(want.source)
        if wanted:
            need_interpreter(conn.name, op.id, wanted, ctx.f.host, version_of(want.source))


def python_of(source: Source) -> str:
    """The CPython version the source's pants.toml asks for, when the source is on this machine."""
    text = source_files(source).get("pants.toml", "")
    found = re.search(r'interpreter_constraints\s*=\s*\[\s*"CPython==([0-9.]+)"', text)
    return found.group(1) if found else ""


def version_of(source: Source) -> str:
    """The VERSION file of the source's ref, when the source is on this machine ("" otherwise)."""
    return source_files(source).get("VERSION", "").strip()


def source_version(have: CheckoutFacts, spec: str, where: str = "the source") -> str:
    """The version a source brings (its VERSION file), for a stack whose settings follow it: the
    host's checkout as it is when that is the source's (or one devkit adopts as it is), else the
    source's ref read here; "" for no source, or a URL not cloned yet. `where` names the setting
    in a bad spec's error."""
    source = parse_source(spec, where)
    if source is None:
        return ""
    rec = have.recorded
    if have.exists and have.version:
        if source.kind == "local":
            if have.head == source.commit:
                return have.version
        elif not rec or (rec.get("source"), rec.get("ref")) == (source.location, source.ref):
            return have.version
    return version_of(source)


SOURCE_FILES = ("pants.toml", "VERSION")  # what devkit reads from a source before cloning it


def source_files(source: Source) -> dict[str, str]:
    """SOURCE_FILES of the source's ref, read on this machine (none for a URL): `git show` in a
    repository; a bundle is fetched once into a throwaway repository for all of them."""
    if source.kind == "url":
        return {}
    ref = source.commit or source.ref or "HEAD"
    if source.kind in ("repo", "local"):
        return _show(["git", "-C", source.location], ref)
    st = os.stat(source.location)
    return dict(_bundle_files(source.location, ref, st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _bundle_files(path: str, ref: str, mtime: int, size: int) -> tuple[tuple[str, str], ...]:
    # mtime and size key the cache: a bundle written again is read again
    with tempfile.TemporaryDirectory(prefix="devkit-bundle-") as tmp:
        subprocess.run(["git", "init", "-q", tmp], capture_output=True, check=False)
        got = subprocess.run(
            ["git", "-C", tmp, "fetch", "-q", path, ref], capture_output=True, check=False
        )
        if got.returncode != 0:
            return ()
        return tuple(_show(["git", "-C", tmp], "FETCH_HEAD").items())


def _show(git: list[str], rev: str) -> dict[str, str]:
    out = {}
    for name in SOURCE_FILES:
        r = subprocess.run(
            [*git, "show", f"{rev}:{name}"], capture_output=True, text=True, check=False
        )
        if r.returncode == 0:
            out[name] = r.stdout
    return out


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
    from devkit.provision import gitpush  # the push's host side, only when it is used

    d = ctx.d
    find = None
    programs = ctx.f.of("programs")
    if programs.running and any(x.state == "RUNNING" for x in programs.programs.values()):
        # the stack runs: the edit loop's rules (written now if this run brings them) say which
        # services the pushed files restart, under the edit lock, as `devkit sync` does
        for f in d.of("files"):
            if f.id in (editspec.RULES_ID, editspec.SCRIPT_ID):
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
        from devkit.provision import editloop

        notes += editloop.lines(conn.name, pushed.then)


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
