"""Push a local clone's branch, with its uncommitted work, into a checkout on a host, over the
connection devkit already has (a git bundle through SFTP: no git server, no second login).

`push` is what `devkit sync` does and what a stack's source = "local" does on its first provision
(`include_uncommitted=False`, `init=True`). The host side is onhost/push.py; it refuses, changing
nothing, when the push would overwrite an edit made on the host (a file, or a commit only the host
has), and says which. With `save_host_edits`, those edits come here first (the local branch
devkit/host-edits/HOST), and only then does the push go over them: nothing is lost either way.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from devkit import proc
from devkit.errors import DevkitError, GitError, RemoteError
from devkit.provision.onhost import push as host_push
from devkit.provision.onhost.edit import report as edit_report
from devkit.provision.ssh import ship
from devkit.provision.ssh.command import PYTHON, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout

OUT_REF = "refs/devkit/sync-out"
WHO = {
    "GIT_AUTHOR_NAME": "devkit",
    "GIT_AUTHOR_EMAIL": "devkit@localhost",
    "GIT_COMMITTER_NAME": "devkit",
    "GIT_COMMITTER_EMAIL": "devkit@localhost",
}


class Local(NamedTuple):
    """What is pushed: the branch (or "" on a detached HEAD), its commit, and WIP: a commit whose
    tree is the working tree (untracked files too, ignored ones not) and whose parent is HEAD."""

    repo: Path
    branch: str
    head: str
    wip: str
    dirty: tuple[str, ...]  # the uncommitted paths WIP carries


class Pushed(NamedTuple):
    local: Local
    checkout: str
    changed: tuple[str, ...]  # files the push changed on the host
    kept: tuple[str, ...]  # files edited on the host that the push left alone
    commits: int  # commits the host did not have
    saved: str  # the local branch the host's edits were saved to ("" = none)
    then: dict[str, Any] | None  # the restart report, when the push restarted what changed


class SyncRefused(DevkitError):
    """The push would overwrite edits made on the host: nothing was changed on either side."""


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, **(extra or {})}


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    r = proc.run("git", "-C", str(repo), *args, env=_env(env))
    if r.returncode == 127:
        raise DevkitError("git is not installed or not on PATH", "Install git.")
    if r.returncode != 0:
        raise GitError(["git", *args], r.returncode, r.err)
    return r.out


def toplevel(path: Path) -> Path:
    r = proc.run("git", "-C", str(path), "rev-parse", "--show-toplevel", env=_env())
    if r.returncode != 0:
        raise DevkitError(
            f"not inside a git clone: {path.resolve()}",
            "Run `devkit sync` from your clone of the project, or point --repo at it.",
        )
    return Path(r.out.strip())


def snapshot(repo: Path, include_uncommitted: bool = True) -> Local:
    """The state to push, made without touching the clone's index or files (a scratch index)."""
    head = _git(repo, "rev-parse", "-q", "--verify", "HEAD^{commit}").strip()
    r = proc.run("git", "-C", str(repo), "symbolic-ref", "-q", "--short", "HEAD", env=_env())
    branch = r.out.strip() if r.returncode == 0 else ""
    tree = _git(repo, "rev-parse", "HEAD^{tree}").strip()
    dirty: tuple[str, ...] = ()
    if include_uncommitted:
        real = Path(
            _git(repo, "rev-parse", "--path-format=absolute", "--git-path", "index").strip()
        )
        with tempfile.TemporaryDirectory(prefix="devkit-sync-") as tmp:
            scratch = Path(tmp) / "index"
            if real.exists():
                scratch.write_bytes(real.read_bytes())
            env = {"GIT_INDEX_FILE": str(scratch)}
            _git(repo, "add", "-A", env=env)
            tree = _git(repo, "write-tree", env=env).strip()
        out = _git(repo, "diff-tree", "-r", "-z", "--name-only", "HEAD", tree)
        dirty = tuple(p for p in out.split("\0") if p)
    # the same state is the same commit: its dates are HEAD's, so a second sync sends nothing
    date = _git(repo, "log", "-1", "--format=%cI", "HEAD").strip()
    msg = f"devkit sync: the working tree of {branch or 'a detached HEAD'}\n"
    wip = _git(
        repo,
        "commit-tree",
        tree,
        "-p",
        head,
        "-m",
        msg,
        env={**WHO, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
    ).strip()
    return Local(repo, branch, head, wip, dirty)


def _remote(conn: Connection, what: str, req: dict[str, Any], op: str) -> dict[str, Any]:
    source = Path(host_push.__file__).read_text(encoding="utf-8")
    words = [q(source), what, q(json.dumps(req))]
    if req.get("find"):  # the stack is found by the edit loop's own lookup, in the same command
        words.append(q(ship.edit_script()))
    cmd = sh(PYTHON, *words).labelled(f"<devkit push {what}>")
    res = conn.run(cmd, op, check=False)
    try:
        out = dict(json.loads(res.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        raise RemoteError(
            conn.name,
            op,
            f"the host side of the push failed (exit code {res.rc})",
            f"<devkit push {what}>",
            res.rc,
            (res.stderr or res.stdout)[-2000:],
        ) from None
    if out.get("error"):
        raise RemoteError(conn.name, op, str(out["error"]))
    return out


def _known(repo: Path, tips: list[str]) -> list[str]:
    """Of the host's commits, those this clone has too (a bundle may leave them out)."""
    if not tips:
        return []
    r = proc.run(
        "git",
        "-C",
        str(repo),
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        input=("\n".join(tips) + "\n").encode(),
        env=_env(),
    )
    return [ln.split()[0] for ln in r.out.splitlines() if ln.endswith(" commit")]


def _bundle(local: Local, known: list[str]) -> bytes:
    """A bundle of WIP and the commits it needs, less what the host has (that this clone knows)."""
    _git(local.repo, "update-ref", OUT_REF, local.wip)
    try:
        with tempfile.TemporaryDirectory(prefix="devkit-sync-") as tmp:
            path = Path(tmp) / "push.bundle"
            _git(local.repo, "bundle", "create", "-q", str(path), OUT_REF, "--not", *known)
            return path.read_bytes()
    finally:
        _git(local.repo, "update-ref", "-d", OUT_REF)


def _fetch_saved(local: Local, conn: Connection, saved: dict[str, Any], host: str) -> str:
    """Bring the host's saved edits into a local branch; its name."""
    data = conn.get(saved["bundle"])
    if data is None:
        raise RemoteError(conn.name, "sync", f"cannot read {saved['bundle']} back from the host")
    name, n = f"devkit/host-edits/{host}", 1
    while _exists(local.repo, f"refs/heads/{name}"):
        n += 1
        name = f"devkit/host-edits/{host}-{n}"
    with tempfile.TemporaryDirectory(prefix="devkit-sync-") as tmp:
        path = Path(tmp) / "edits.bundle"
        path.write_bytes(data)
        _git(local.repo, "fetch", "-q", "--no-tags", str(path), f"{saved['ref']}:refs/heads/{name}")
    if _git(local.repo, "rev-parse", f"refs/heads/{name}").strip() != saved["commit"]:
        raise DevkitError(f"the host's edits did not arrive whole in {name}: nothing was synced")
    return name


def _exists(repo: Path, ref: str) -> bool:
    return proc.run("git", "-C", str(repo), "rev-parse", "-q", "--verify", ref).returncode == 0


def refusal(host: str, checkout: str, out: dict[str, Any]) -> SyncRefused:
    """One error that lists what the push would overwrite and how to resolve it (pure)."""
    lines = [f"{host}: sync refused: it would overwrite work on {host} in {checkout}:"]
    word = {"M": "edited", "A": "new", "D": "deleted", "T": "changed type"}
    for status, path in out.get("conflicts", []):
        lines.append(f"    {path}  ({word.get(status, status)} on {host})")
    if out.get("commits"):
        lines.append(f"  commit(s) on {host}'s branch that yours does not have:")
        lines += [f"    {sha} {subject}" for sha, subject in out["commits"]]
    if out.get("staged"):
        lines.append(f"  staged on {host}, then changed again (the index holds a third version):")
        lines += [f"    {p}" for p in out["staged"]]
    lines.append(f"  nothing was changed on {host} or here")
    hint = (
        f"Keep them: `devkit sync {host} --save-host-edits` brings them into the local branch "
        f"devkit/host-edits/{host} first, then syncs over them; or take them back on {host} "
        f"(`git -C {checkout} status`) and sync again."
    )
    return SyncRefused("\n".join(lines), hint)


def push(
    conn: Connection,
    repo: Path,
    checkout: str = "",
    *,
    find: dict[str, Any] | None = None,
    host: str = "",
    include_uncommitted: bool = True,
    init: bool = False,
    save_host_edits: bool = False,
    restart: bool = True,
) -> Pushed:
    """Make the host's checkout hold this clone's branch and (by default) its uncommitted work.
    The checkout is `checkout`, or the one of the stack with an edit loop that `find` names
    (editloop.request): then the services whose files changed are restarted under the stack's
    edit lock before it returns (Pushed.then), unless `restart` is off (the host's watcher does
    it). Raises SyncRefused when it would overwrite edits made on the host."""
    host = host or conn.name
    local = snapshot(repo, include_uncommitted)
    seen = _remote(
        conn, "inspect", {"checkout": checkout, "find": find or {}, "wip": local.wip}, "sync"
    )
    checkout = str(seen["checkout"])
    if seen.get("exists") and not seen.get("git"):
        raise DevkitError(f"{host}: {checkout} exists and is not a git checkout")
    if not seen.get("exists") and not init:
        raise DevkitError(
            f"{host}: there is no checkout at {checkout}",
            f"Provision it first: devkit provision {host}",
        )
    req: dict[str, Any] = {
        "checkout": checkout,
        "wip": local.wip,
        "branch": local.branch,
        "init": init,
        "host": host,
        "save": save_host_edits,
    }
    base = str(seen.get("base") or "")
    if base:
        req["lock"] = f"{base}/run/edit.lock"
        rules = json.dumps({"rules": f"{base}/{layout.EDIT_RULES}"})
        script = f"{base}/{layout.EDIT_SCRIPT}"
        if restart:
            req["then"] = ["/usr/bin/python3", "-I", "-S", script, "changed", rules]
    known = _known(repo, list(seen.get("tips") or []))
    if not seen.get("has_wip"):
        path = f"/tmp/.devkit-sync-{os.urandom(6).hex()}.bundle"
        conn.put(path, _bundle(local, known), 0o600, "sync")
        req["bundle"] = path
    # the commits the push moves the host's checkout by (from its HEAD when this clone knows it;
    # a refused push may have left these commits' objects on the host already)
    since = _known(repo, [str(seen.get("head") or "")]) if seen.get("head") else []
    commits = int(
        _git(repo, "rev-list", "--count", local.head, "--not", *(since or known)).strip() or 0
    )
    out = _remote(conn, "apply", req, "sync")
    saved = ""
    if not out.get("applied"):
        if not out.get("saved"):
            raise refusal(host, checkout, out)
        saved = _fetch_saved(local, conn, out["saved"], host)
        out = _remote(
            conn,
            "apply",
            {**req, "bundle": "", "save": False, "force": out["saved"]["commit"]},
            "sync",
        )
    return Pushed(
        local,
        checkout,
        tuple(out.get("changed") or ()),
        tuple(out.get("kept") or ()),
        commits,
        saved,
        out.get("then"),
    )


def describe(p: Pushed, host: str) -> list[str]:
    """What the push did, for people (pure)."""
    what = p.local.branch or f"HEAD ({p.local.head[:10]})"
    parts = [f"{p.commits} new commit(s)" if p.commits else "no new commits"]
    if p.local.dirty:
        parts.append(f"{len(p.local.dirty)} uncommitted file(s)")
    lines = []
    if p.saved:
        lines.append(
            f"saved the edits made on {host} into the local branch {p.saved} "
            f"(`git log -p {p.saved}`), then synced over them"
        )
    if p.changed:
        lines.append(
            f"pushed {what} ({', '.join(parts)}) to {p.checkout}: "
            f"{edit_report.few(list(p.changed))} changed there"
        )
    else:
        lines.append(f"{p.checkout} already has {what} as it is here: nothing to push")
    if p.kept:
        lines.append(
            f"kept {len(p.kept)} file(s) edited on {host} that this push does not touch: "
            f"{edit_report.few(list(p.kept))}"
        )
    return lines
