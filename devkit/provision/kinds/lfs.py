"""Git LFS files of a checkout. A clone without git-lfs (or from a bundle, or offline) holds pointer
files where the content should be. `git lfs pull` fetches them where git-lfs and the remote can;
the rest are filled from the released wheels that carry the same files (`[checkout] lfs_wheels`),
each verified against its pointer's sha256. A pointer left unresolved is named, with what it
breaks, in the run's notes; nothing else depends on it being resolved."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

from devkit import paths
from devkit.provision.kinds import checkout, packages
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
    no_finish,
    no_notes,
    no_steps,
)
from devkit.provision.onhost.facts import read, run
from devkit.provision.ssh.command import as_user, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack.spec import Stack

NAME = "lfs"
POINTER = b"version https://git-lfs.github.com/spec/v1"

# what a missing file breaks, by where it is in Backend.AI's tree (else: "what uses <path>")
BREAKS = (
    ("src/ai/backend/runner/", "compute sessions: the kernel runner mounts it into containers"),
    ("src/ai/backend/agent/docker/", "the agent: one of its helper images or binaries"),
    ("src/ai/backend/agent/kubernetes/", "the agent's Kubernetes backend (not used here)"),
    ("src/ai/backend/web/assets/", "the web UI's local-proxy download"),
)


class Pointer(NamedTuple):
    path: str  # relative to the checkout
    oid: str  # sha256 of the content
    size: int
    mode: int = 0o644  # the pointer file's: what git checked it out with


class DLfs(NamedTuple):
    checkout: str
    version: str  # the checkout's VERSION: which wheels to look in
    wheels: tuple[str, ...]  # distributions that carry the files
    python: str = ""  # the interpreter its pants.toml asks for: the Python those wheels are for


def request(stack: Stack) -> dict[str, Any]:
    return {"state": checkout.STATE}


def collect(req: dict[str, Any], base: str) -> dict[str, Any]:  # runs on the host
    """The LFS pointers of the checkout at req["path"] (else the one devkit made) that are still
    pointers."""
    path = req.get("path")
    if not path:
        try:
            path = json.loads(read(os.path.join(base, req["state"])) or "{}").get("path")
        except ValueError:
            path = None
    if not path or not os.path.isdir(os.path.join(path, ".git")):
        return {}
    rc, listing = run(["git", "-C", path, "ls-files", "-z", ":(attr:filter=lfs)"], timeout=60)
    pointers = []
    for rel in listing.split("\0") if rc == 0 else []:
        try:
            with open(os.path.join(path, rel), "rb") as fh:
                head = fh.read(300)
                mode = os.fstat(fh.fileno()).st_mode & 0o777
        except OSError:
            continue
        if head.startswith(b"version https://git-lfs.github.com/spec/v1"):
            oid = re.search(rb"oid sha256:([0-9a-f]{64})", head)
            size = re.search(rb"size ([0-9]+)", head)
            if oid and size:
                pointers.append([rel, oid.group(1).decode(), int(size.group(1)), mode])
    import shutil

    # on the PATH, where git finds it (asking `git lfs version` starts two processes)
    return {"pointers": pointers, "git_lfs": bool(shutil.which("git-lfs")), "path": path}


REMOTE = (collect,)


class LfsFacts(NamedTuple):
    pointers: tuple[Pointer, ...]
    git_lfs: bool
    path: str = ""  # the checkout looked at


def parse(raw: Any) -> LfsFacts:
    raw = raw or {}
    return LfsFacts(
        tuple(Pointer(str(x[0]), str(x[1]), int(x[2]), *x[3:]) for x in raw.get("pointers") or ()),
        bool(raw.get("git_lfs")),
        str(raw.get("path") or ""),
    )


def desired(b: Build) -> DLfs | None:
    spec, want, code = checkout.spec_of(b.stack), b.built.get(checkout.NAME), b.code
    if spec is None or want is None or not code.known:
        return None
    return DLfs(want.path, code.version, spec.lfs_wheels, code.python)


def refresh(conn: Connection, d: Desired, f: Facts, ask: Any) -> Facts:
    want: DLfs | None = d.of(NAME)
    if want is None or f.of(NAME).path == want.checkout:
        return f
    return f._replace(kinds={**f.kinds, NAME: parse(ask(NAME, {"path": want.checkout}))})


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    want: DLfs | None = d.of(NAME)
    have: LfsFacts = f.of(NAME)
    if want is None or not have.pointers:
        return []
    recorded = f.of(checkout.NAME).recorded.get("lfs_unresolved")
    if recorded == _key(have.pointers):
        return []  # the ones no source had last time either: named then, not retried every run
    detail = f"{len(have.pointers)} Git LFS pointer file(s) in {want.checkout}"
    return [Op(NAME, "lfs", "fill", detail, (want, have))]


LOOKUP = "4"  # where devkit looks for LFS files: a change looks again for those it could not find


def _key(pointers: tuple[Pointer, ...]) -> str:
    oids = [LOOKUP, *sorted(p.oid for p in pointers)]
    return hashlib.sha256("\0".join(oids).encode()).hexdigest()[:16]


def candidates(version: str) -> list[str]:
    """Released versions to look in first: the checkout's own (PEP 440: 23.09.11 is 23.9.11) and
    the release of a pre-release (26.8.0rc1 -> 26.8.0)."""
    m = re.match(r"(\d+)\.0*(\d+)\.(\d+)(.*)", version.strip())
    if not m:
        return []
    major, minor, patch, rest = m.groups()
    out = [f"{major}.{minor}.{patch}{rest}", f"{major}.{minor}.{patch}"]
    return list(dict.fromkeys(out))


def lookups(version: str, python: str = "") -> list[tuple[str, ...]]:
    """pip requirements suffixes (with the pip options they need), in the order they are tried:
    the checkout's own versions, the newest of its line (both for the checkout's Python: PyPI
    offers 26.x's wheels only to a Python 3.13 pip), then the newest release of any line (a
    branch may carry files only later releases ship: 23.09's static runner binaries are in
    26.x's wheels, which only a Python 3.13 pip would pick)."""
    minor = ".".join(python.split(".")[:2])
    own = ("--python-version", minor) if minor else ()
    specs: list[tuple[str, ...]] = [(f"=={v}", *own) for v in candidates(version)]
    line = ".".join(candidates(version)[-1].split(".")[:2]) if candidates(version) else ""
    if line:
        specs.append((f"=={line}.*", *own))
    specs.append(("", "--python-version", "3.13"))
    return specs


def _cache() -> Path:
    return Path(os.environ.get("DEVKIT_WHEEL_CACHE") or paths.state_dir() / "wheels") / "lfs"


def _cached(dist: str) -> list[Path]:
    return sorted(w for w in _cache().glob("*.whl") if _dist_of(w.name) == _norm(dist))


def _fetch(dist: str, lookup: tuple[str, ...], machine: str) -> list[Path]:
    """The wheels of `dist` this lookup adds to devkit's cache on this machine (none when the
    package index has no such release, or cannot be reached)."""
    cache = _cache()
    cache.mkdir(parents=True, exist_ok=True)
    before = set(_cached(dist))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    for plat in (f"manylinux2014_{machine}", f"manylinux_2_17_{machine}", "any"):
        cmd += ["--platform", plat]
    cmd += ["-d", str(cache), *lookup[1:], f"{dist}{lookup[0]}"]
    subprocess.run(cmd, capture_output=True, text=True, check=False)
    return sorted(set(_cached(dist)) - before)


def find_files(
    wants: list[Pointer], dists: tuple[str, ...], version: str, machine: str, python: str = ""
) -> dict[str, bytes]:
    """The content of each pointer (by oid) that a wheel carries, sha256-verified: first the
    wheels devkit has cached, then each lookup in turn, until nothing is missing."""
    sizes = {p.size for p in wants}
    found: dict[str, bytes] = {}

    def read_wheels(wheels: list[Path]) -> None:
        for whl in wheels:
            with zipfile.ZipFile(whl) as z:
                for info in z.infolist():
                    if info.file_size in sizes:
                        data = z.read(info)
                        found.setdefault(hashlib.sha256(data).hexdigest(), data)

    def missing() -> bool:
        return any(p.oid not in found for p in wants)

    for dist in dists:
        read_wheels(_cached(dist))
    for lookup in lookups(version, python):
        if not missing():
            break
        for dist in dists:
            read_wheels(_fetch(dist, lookup, machine))
    return found


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_of(wheel: str) -> str:
    """A wheel file's distribution name, normalized (backend.ai_agent-23.9.10-... -> backend-ai-agent)."""
    return _norm(wheel.split("-", 1)[0])


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    want, have = op.item
    d = ctx.d
    pointers = list(have.pointers)
    if not have.git_lfs:
        conn.run(packages.install(("git-lfs",), d.is_root), op.id)
    # git-lfs's filter makes a filled file and its pointer one to git: `git status` stays clean
    pull = sh("cd", q(want.checkout), "&& git lfs install --local >/dev/null && git lfs pull")
    conn.run(as_user(pull, "", d.user, d.is_root), op.id, check=False)
    left = collect_remaining(conn, want.checkout, pointers, op.id)
    pointers = [p for p in pointers if p.path in left]
    machine = ctx.f.host.machine
    # a file for the other architecture breaks nothing here: not worth a download
    wanted = [p for p in pointers if not _breaks(p.path, machine).startswith("nothing here")]
    by_oid = find_files(wanted, want.wheels, want.version, machine, want.python)
    left, filled = [], []
    for p in pointers:
        hit = by_oid.get(p.oid)
        if hit is None:
            left.append(p)
            continue
        # the mode git checked the pointer out with: git then sees no change but the content
        conn.put(f"{want.checkout}/{p.path}", hit, p.mode, op.id)
        filled.append(p.path)
    if filled:
        # the index still has the pointer's size, which `update-index --refresh` takes for a
        # change; `git add` runs git-lfs's clean filter: the same blob, the new stat, as after
        # `git lfs pull` (the object is kept in .git/lfs/objects too)
        add = sh("git -C", q(want.checkout), "add --", *(q(path) for path in filled))
        conn.run(as_user(add, "", d.user, d.is_root), op.id)
    if left:
        ctx.state.setdefault("notes", []).extend(unresolved(want.checkout, left, machine))
    record = dict(ctx.f.of(checkout.NAME).recorded)
    record["lfs_unresolved"] = _key(tuple(left)) if left else ""
    checkout.save_record(conn, op.id, d, record)


def unresolved(checkout: str, left: list[Pointer], machine: str) -> list[str]:
    """The run's note on the pointers left: each with what it breaks; those of another
    architecture, which break nothing here, counted on one line."""
    breaks = {p.path: _breaks(p.path, machine) for p in left}
    other = [p for p in left if breaks[p.path].startswith("nothing here")]
    lines = [
        f"{len(left)} Git LFS file(s) of {checkout} are still pointers (neither git lfs nor "
        "the released wheels had them):"
    ]
    lines += [f"  {p.path}: {breaks[p.path]}" for p in left if p not in other]
    if other:
        arch = _OTHER_ARCH[machine]
        lines.append(f"  and {len(other)} for {arch}: nothing uses them on this {machine} host")
    return lines


_OTHER_ARCH = {"x86_64": "aarch64", "aarch64": "x86_64"}


def _breaks(path: str, machine: str) -> str:
    other = _OTHER_ARCH.get(machine, "")
    if other and other in path:
        return f"nothing here: it is for {other}, this host is {machine}"
    return next((what for prefix, what in BREAKS if path.startswith(prefix)), f"what uses {path}")


def collect_remaining(conn: Connection, root: str, pointers: list[Pointer], op: str) -> set[str]:
    """Which of these files are still pointers (after `git lfs pull`)."""
    script = sh(
        "cd",
        q(root),
        "&& for f in",
        *(q(p.path) for p in pointers),
        '; do head -c 44 "$f" | grep -q "^version https://git-lfs" && printf "%s\\n" "$f"; done; true',
    )
    return set(conn.run(script, op, check=False).stdout.splitlines())


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
check = no_check
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
