"""Pushing a local branch and its uncommitted work into a checkout ON THE HOST: standard library
and git only, no devkit imports (shipped as source by gitpush.py).

    python3 -I -S -c SCRIPT inspect REQUEST   what the checkout has (for the bundle's prerequisites)
    python3 -I -S -c SCRIPT apply REQUEST     bring it to the pushed state, or refuse

The pushed state is one commit, WIP: its tree is the local working tree, its parent the local HEAD.
`refs/devkit/synced` remembers the last WIP applied, so an edit made on the host since is told
apart from one the push brings. A host edit the push would overwrite (or a commit only the host
has) refuses the whole push before anything changes; host edits it does not touch are kept.
git's own two-tree read-tree does the switch, so a file that changes under it stops it too.
"""
# ruff: noqa: UP031  (old-Python spellings on purpose: the host's python3 may be old)

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
SYNCED = "refs/devkit/synced"
INCOMING = "refs/devkit/incoming"
ZERO = "0" * 40
SAVED_BUNDLE = "devkit-host-edits.bundle"


class Refused(Exception):
    pass


def git(
    top: str,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> str:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    # a bundle carries Git LFS pointers, never their files: git-lfs must not try to fetch them
    # (the checkout's files stay as they are; devkit fills new pointers from released wheels)
    e["GIT_LFS_SKIP_SMUDGE"] = "1"
    e.update(env or {})
    p = subprocess.run(["git", "-C", top, *args], input=input, capture_output=True, env=e)
    if check and p.returncode != 0:
        raise Refused(
            "git %s failed: %s" % (" ".join(args[:3]), p.stderr.decode(errors="replace").strip())
        )
    return p.stdout.decode("utf-8", "surrogateescape")


def rev(top: str, name: str) -> str:
    return git(top, "rev-parse", "-q", "--verify", name, check=False).strip()


def tree_of(top: str, commit: str) -> str:
    return rev(top, commit + "^{tree}") if commit else EMPTY_TREE


def worktree(top: str, scratch: str) -> str:
    """The working tree as a tree object (tracked and untracked files; ignored ones left out),
    through a scratch index: the checkout's own index and files are not touched."""
    real = git(top, "rev-parse", "--git-path", "index").strip()
    real = real if os.path.isabs(real) else os.path.join(top, real)
    if os.path.exists(real):
        shutil.copyfile(real, scratch)
    env = {"GIT_INDEX_FILE": scratch}
    git(top, "add", "-A", env=env)
    return git(top, "write-tree", env=env).strip()


def changes(top: str, a: str, b: str) -> dict[str, str]:
    """path -> A, M, D, T between two trees."""
    out = git(top, "diff-tree", "-r", "-z", "--no-renames", "--name-status", a, b).split("\0")
    return {out[i + 1]: out[i] for i in range(0, len(out) - 1, 2) if out[i]}


def classify(
    edited: dict[str, str], pushed: dict[str, str], differ: set[str]
) -> tuple[list[str], list[str]]:
    """(host edits the push would overwrite, host edits it leaves as they are) (pure).
    edited: what the host changed since the last push; pushed: what the push changes; differ:
    where the host's file and the pushed one are not the same."""
    conflicts = sorted(p for p in edited if p in pushed and p in differ)
    kept = sorted(p for p in edited if p not in pushed)
    return conflicts, kept


def host_commits(top: str, head: str, incoming: str, synced_head: str) -> list[list[str]]:
    """Commits on the host's branch that neither the push, the last push nor a remote has."""
    if not head:
        return []
    args = ["log", "--format=%h %s", "--max-count=20", head, "^" + incoming]
    if synced_head:
        args.append("^" + synced_head)
    out = git(top, *args, "--not", "--remotes", "--").strip()
    return [ln.split(" ", 1) for ln in out.splitlines() if ln]


def locate(find: dict[str, Any], edit_source: str) -> dict[str, Any]:
    """The stack's base dir and rules, by the edit loop's own lookup (onhost/edit.py's source came
    with this command: one round trip finds the stack and looks at its checkout)."""
    ns: dict[str, Any] = {"__name__": "devkit_edit"}
    exec(edit_source, ns)
    try:
        return dict(ns["located"](find))
    except (LookupError, OSError, ValueError) as exc:
        raise Refused(str(exc)) from None


def inspect(req: dict[str, Any]) -> dict[str, Any]:
    where = locate(req["find"], req["edit_source"]) if req.get("find") else {}
    top = req.get("checkout") or where["rules"]["checkout"]
    out = inspect_checkout(top, req["wip"])
    return {**out, **where, "checkout": top}


def inspect_checkout(top: str, wip: str) -> dict[str, Any]:
    if not os.path.isdir(top):
        return {"exists": False}
    if git(top, "rev-parse", "--show-toplevel", check=False).strip() != os.path.realpath(top):
        return {"exists": True, "git": False}
    tips = git(top, "for-each-ref", "--format=%(objectname)", "--count=300").split()
    head = rev(top, "HEAD")
    synced = rev(top, SYNCED)
    return {
        "exists": True,
        "git": True,
        "head": head,
        "synced": synced,
        "tips": sorted(set(tips + [t for t in (head, synced) if t])),
        "has_wip": bool(rev(top, wip + "^{commit}")),
    }


class Lock:
    """The stack's edit lock (the watcher's and restart --changed's), held while the files change
    and the services restart, so one save restarts a service once."""

    def __init__(self, path: str) -> None:
        self.path, self.fd = path, -1

    def __enter__(self) -> Lock:
        if self.path:
            import fcntl

            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def save_edits(
    top: str, host_tree: str, head: str, incoming_head: str, host: str, edited: list[str]
) -> dict[str, Any]:
    """The host's state as a commit (its parent the host's HEAD), kept under refs/devkit/host-edits/
    and bundled for the other side to fetch."""
    msg = "devkit: edits made on %s, saved by devkit sync\n\n%s\n" % (host, "\n".join(edited[:200]))
    who = {
        "GIT_AUTHOR_NAME": "devkit",
        "GIT_AUTHOR_EMAIL": "devkit@localhost",
        "GIT_COMMITTER_NAME": "devkit",
        "GIT_COMMITTER_EMAIL": "devkit@localhost",
    }
    args = ["commit-tree", host_tree] + (["-p", head] if head else [])
    commit = git(top, *args, env=who, input=msg.encode()).strip()
    ref = "refs/devkit/host-edits/%d" % int(time.time() * 1000)
    git(top, "update-ref", ref, commit)
    bundle = os.path.join(git_dir(top), SAVED_BUNDLE)
    git(top, "bundle", "create", bundle, ref, "--not", incoming_head)
    return {"commit": commit, "ref": ref, "bundle": bundle}


def git_dir(top: str) -> str:
    d = git(top, "rev-parse", "--git-dir").strip()
    return d if os.path.isabs(d) else os.path.join(top, d)


def apply(req: dict[str, Any]) -> dict[str, Any]:
    try:
        return _receive(req)
    finally:
        if req.get("bundle") and os.path.exists(req["bundle"]):
            os.unlink(req["bundle"])  # uploaded for this run only


def _receive(req: dict[str, Any]) -> dict[str, Any]:
    top, wip, branch = req["checkout"], req["wip"], req.get("branch") or ""
    if not os.path.isdir(os.path.join(top, ".git")) and not rev(top, "HEAD") and req.get("init"):
        if os.path.isdir(top) and os.listdir(top):
            raise Refused("%s exists and is not a git checkout: move it away first" % top)
        os.makedirs(top, exist_ok=True)
        git(top, "init", "-q", "--initial-branch", branch or "main")
    elif git(top, "rev-parse", "--show-toplevel", check=False).strip() != os.path.realpath(top):
        raise Refused("%s is not a git checkout" % top)
    if req.get("bundle"):
        git(top, "bundle", "unbundle", req["bundle"])
    saved = os.path.join(git_dir(top), SAVED_BUNDLE)
    if os.path.exists(saved) and not req.get("save"):
        os.unlink(saved)  # the other side has fetched it (or gave up on it)
    if not rev(top, wip + "^{commit}"):
        raise Refused("the pushed commit %s did not arrive" % wip[:10])
    git(top, "update-ref", INCOMING, wip)  # reachable, so a gc in between cannot take it
    with Lock(req.get("lock") or "") as lock:
        out = _apply(top, wip, branch, req)
        if req.get("then") and out.get("applied"):
            out["then"] = _then(req["then"], lock)
    return out


def _then(argv: list[str], lock: Lock) -> Any:
    """A command to run while the lock is held (restarting what changed): its JSON output. It
    gets the locked descriptor itself, so its own lock is this one, not a wait for it."""
    env = dict(os.environ)
    fds: tuple[int, ...] = ()
    if lock.fd >= 0:
        env["DEVKIT_EDIT_LOCK_FD"] = str(lock.fd)
        fds = (lock.fd,)
    p = subprocess.run(argv, capture_output=True, env=env, pass_fds=fds)
    try:
        return json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = p.stderr.decode(errors="replace").strip()[-500:] or "exit code %d" % p.returncode
        return {"error": "restarting what changed failed: %s" % err}


def _apply(top: str, wip: str, branch: str, req: dict[str, Any]) -> dict[str, Any]:
    gd = git_dir(top)
    scratch = os.path.join(gd, "devkit-sync.index.%d" % os.getpid())
    backup = os.path.join(gd, "devkit-sync.index-before.%d" % os.getpid())
    real = os.path.join(gd, "index")
    try:
        head = rev(top, "HEAD")
        incoming_head = rev(top, wip + "^")
        pushed_tree = tree_of(top, wip)
        host_tree = worktree(top, scratch)
        synced = rev(top, SYNCED)
        synced_head = rev(top, SYNCED + "^") if synced else ""
        base = tree_of(top, synced) if synced and head == synced_head else tree_of(top, head)
        edited = changes(top, base, host_tree)
        pushed = changes(top, base, pushed_tree)
        differ = set(changes(top, host_tree, pushed_tree))
        conflicts, kept = classify(edited, pushed, differ)
        commits = host_commits(top, head, incoming_head, synced_head)
        staged = []
        if head:
            unstaged = set(git(top, "diff", "-z", "--name-only").split("\0")) - {""}
            cached = set(git(top, "diff", "--cached", "-z", "--name-only").split("\0")) - {""}
            staged = sorted(
                unstaged & cached
            )  # staged, then changed again: the index has a third version
        force = req.get("force") or ""
        if force:
            if (
                rev(top, force + "^{tree}") != host_tree
                or (rev(top, force + "^") if head else "") != head
            ):
                raise Refused(
                    "the host's checkout changed again while its edits were being saved: sync again"
                )
        elif conflicts or commits or staged:
            result: dict[str, Any] = {
                "applied": False,
                "conflicts": [[edited[p], p] for p in conflicts],
                "commits": commits,
                "staged": staged,
                "head": head,
                "branch": git(top, "symbolic-ref", "-q", "--short", "HEAD", check=False).strip(),
            }
            if req.get("save"):
                result["saved"] = save_edits(
                    top, host_tree, head, incoming_head, req.get("host", "host"), sorted(edited)
                )
            return result
        # the tree to switch to: the push's files where it changes them, the host's elsewhere
        if force:
            target = pushed_tree
            kept = []
        else:
            raw = git(top, "diff-tree", "-r", "-z", "--no-renames", base, pushed_tree).split("\0")
            info = []
            for i in range(0, len(raw) - 1, 2):
                meta, path = raw[i], raw[i + 1]
                if not meta:
                    continue
                _, new_mode, _, new_sha, status = meta[1:].split(" ")
                info.append(
                    ("0 %s\t%s" % (ZERO, path))
                    if status == "D"
                    else ("%s %s\t%s" % (new_mode, new_sha, path))
                )
            env = {"GIT_INDEX_FILE": scratch}
            git(top, "read-tree", host_tree, env=env)
            if info:
                git(
                    top,
                    "update-index",
                    "-z",
                    "--index-info",
                    env=env,
                    input=("\0".join(info) + "\0").encode(),
                )
            target = git(top, "write-tree", env=env).strip()
        if os.path.exists(real):
            shutil.copyfile(real, backup)
        try:
            git(top, "read-tree", host_tree)
            git(top, "update-index", "-q", "--refresh", check=False)
            git(top, "read-tree", "-m", "-u", host_tree, target)
        except Refused:
            if os.path.exists(backup):
                os.replace(backup, real)
            raise
        if branch:
            git(top, "update-ref", "-m", "devkit sync", "refs/heads/" + branch, incoming_head)
            git(top, "symbolic-ref", "HEAD", "refs/heads/" + branch)
        else:
            git(top, "update-ref", "--no-deref", "-m", "devkit sync", "HEAD", incoming_head)
        git(top, "read-tree", incoming_head)
        git(top, "update-index", "-q", "--refresh", check=False)
        git(top, "update-ref", SYNCED, wip)
        git(top, "update-ref", "-d", INCOMING)
        return {
            "applied": True,
            "changed": sorted(changes(top, host_tree, target)),
            "kept": kept,
            "head": incoming_head,
            "branch": branch,
            "moved": head != incoming_head,
        }
    finally:
        for p in (scratch, backup):
            if os.path.exists(p):
                os.unlink(p)


def main(argv: list[str]) -> int:
    req = json.loads(argv[2])
    if len(argv) > 3:
        req["edit_source"] = argv[3]
    try:
        out = inspect(req) if argv[1] == "inspect" else apply(req)
    except Refused as exc:
        out = {"error": str(exc)}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
