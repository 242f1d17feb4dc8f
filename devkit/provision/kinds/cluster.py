"""A stack over several hosts ([cluster]): a manager host and agent hosts (the `cluster` variable).

Its agent hosts start what `waits` names once the manager host's run is done, `status` is the
manager host's view of them, and `share` is a folder of the manager host that every agent host sees
at the same path (Backend.AI's vfolder root, which agents bind into sessions by the storage-proxy's
path). An agent host on another filesystem mounts it with sshfs over SSH, as Backend.AI's multi-node
setups mount an NFS export: with a key devkit makes for the cluster (kept in the manager host's
secrets, handed to each agent host) that the manager host's login user accepts for SFTP only, and
the manager host's own host keys, read over devkit's verified connection to it. An agent host that
sees the manager host's folder already (one filesystem: network-namespace hosts; or an NFS mount
there) mounts nothing; one without FUSE gets an empty folder there, so that its services start, and
`devkit status` says what does not work on it. `state/share.json` records what was done.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Any, NamedTuple

from devkit import schema as sch
from devkit.errors import ConfigError, DevkitError, RemoteError
from devkit.provision.kinds import packages
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
    no_refresh,
)
from devkit.provision.onhost.facts import read, run
from devkit.provision.ssh.command import Command, cat, join, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.spec import Group, Stack

NAME = "cluster"
STATE = "state/share.json"
# the cluster's private key: the manager host's, and each agent host's copy
KEY = "secrets/share/key"
KNOWN_HOSTS = "secrets/share/known_hosts"  # the manager host's host keys (agent hosts)
SSH_CONFIG = "secrets/share/ssh_config"  # how sshfs reaches the manager host (agent hosts)
MARKER = ".devkit-share"  # in the shared folder: the cluster's public key (who shares it)
TAG = "devkit-share"  # the comment of the manager host's authorized_keys line
MOUNT_OP = "share"  # an agent host's op: its agent host waits for the manager host's run first
LOOK = 5  # seconds a look into the shared folder may take (a dead mount hangs)


class ShareSpec(NamedTuple):
    path: str  # template, rendered on the manager host: the folder, where every host sees it
    before: str  # the service of an agent host that needs it: mounted before that service starts
    what: str  # what does not work on an agent host that cannot mount it


class ClusterSpec(NamedTuple):
    """[cluster]: a stack over several hosts, a manager host and agent hosts (the `cluster`
    variable); its programs start in an order that spans the hosts."""

    waits: tuple[str, ...]  # services an agent host starts once the manager host's run is done
    status: str  # template, run on the manager host by `devkit status`: a line per member,
    # exit 0 when every one is alive
    share: ShareSpec | None = None


SHARE = sch.Table(
    sch.Key(
        "path",
        sch.string(r"/.*|\{.*", "a template of an absolute path"),
        doc="template, rendered on the manager host: the folder every agent host sees at the "
        "same path",
    ),
    sch.Key(
        "before",
        sch.string(r"[A-Za-z0-9_][A-Za-z0-9._-]*", "a service's name"),
        doc="the agent hosts' service that needs it: the folder is mounted before it starts",
    ),
    sch.Key(
        "what",
        sch.string(),
        "the shared folder",
        "what does not work on an agent host that cannot mount it (`devkit status` says so)",
    ),
)
CLUSTER = sch.Table(
    sch.Key(
        "waits",
        sch.strings(),
        (),
        "services an agent host starts once the manager host's run is done",
    ),
    sch.Key(
        "status",
        sch.string(),
        "",
        "template: run on the manager host by `devkit status`; a line per member, exit 0 when "
        "every one is alive",
    ),
    sch.Key(
        "share",
        sch.table(SHARE),
        None,
        "a folder of the manager host that every agent host sees at the same path (sshfs over "
        "SSH where it is on another filesystem)",
    ),
)
SCHEMA = sch.table(CLUSTER)


def _parse(value: Any, where: sch.Where, dirs: tuple[Path, ...]) -> ClusterSpec | None:
    if value is None:
        return None
    v = SCHEMA(value, where)
    share = v.pop("share")
    return ClusterSpec(**v, share=None if share is None else ShareSpec(**share))


def _check(stack: Stack) -> None:
    """The services [cluster] names are the stack's."""
    spec = spec_of(stack)
    names = [s.name for s in stack.services]
    named = [] if spec is None else [("waits", w) for w in spec.waits]
    if spec is not None and spec.share is not None:
        named.append(("share.before", spec.share.before))
    for key, name in named:
        if name not in names:
            raise ConfigError(
                stack.source,
                f"cluster.{key}",
                f"unknown service {name!r}",
                f"Name one of its services: {', '.join(names)}.",
            )


GROUP = Group(
    "cluster",
    _parse,
    check=_check,
    schema=SCHEMA,
    doc="a stack over several hosts, a manager host and agent hosts (the `cluster` variable)",
)


def spec_of(stack: Stack) -> ClusterSpec | None:
    """The stack's [cluster], if it can span hosts."""
    return stack.group(GROUP.key)  # type: ignore[no-any-return]


# --- what the hosts of one run tell each other (engine/run.py hands it over) ------------------


class Offer(NamedTuple):
    """The manager host's side: whether an agent host of this run needs the folder mounted."""

    wanted: bool


class Source(NamedTuple):
    """An agent host's side: the manager host's folder and how to reach it."""

    path: str
    user: str
    address: str
    port: int
    host_keys: tuple[str, ...]  # "TYPE BASE64" of the manager host's sshd
    key: str  # the cluster's private key
    filesystem: str  # the manager host's (HostInfo.filesystem)


def apart(agent: Facts, manager: Facts) -> bool:
    """Is the agent host on another filesystem than the manager host (unknown counts as another)?"""
    one = agent.host.filesystem
    return not one or one != manager.host.filesystem


def source(manager: Desired, f: Facts) -> Source | None:
    """What the manager host offers its agent hosts, from its desired state and facts."""
    d: DShare | None = manager.of(NAME)
    if d is None or d.role != "manager":
        return None
    have: ShareFacts = f.of(NAME)
    return Source(
        d.path, f.host.user, f.host.address, have.port, have.host_keys, d.key, f.host.filesystem
    )


# --- the cluster's key ----------------------------------------------------------------------


def new_key() -> str:
    """A new Ed25519 key in OpenSSH's format, made here (as the stack's secrets are)."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    return pem.decode()


def public_key(private: str) -> str:
    """`ssh-ed25519 BASE64` of a private key; "" when it is not one."""
    from cryptography.hazmat.primitives import serialization as ser

    try:
        key = ser.load_ssh_private_key(private.encode(), None)
    except (ValueError, TypeError):
        return ""
    pub = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    return pub.decode()


def authorized_line(public: str, base: str) -> str:
    """The manager host's authorized_keys line: SFTP only, nothing else (no shell, no forwarding)."""
    return f'restrict,command="internal-sftp" {public} {TAG} {base}'


# --- facts ----------------------------------------------------------------------------------


class ShareFacts(NamedTuple):
    key: str = ""  # the cluster's private key, as the host keeps it
    state: dict[str, Any] = {}  # state/share.json
    marker: str | None = None  # the marker in the recorded folder (None: unreadable)
    mount: str = ""  # the recorded folder's mount: "FSTYPE SOURCE" ("" when it is none)
    is_dir: bool = False  # the recorded folder is a directory
    fuse: str = ""  # why FUSE cannot mount here ("" when it can; "not asked" without an answer)
    sshfs: bool = False  # sshfs is installed
    authorized: tuple[str, ...] = ()  # the login user's authorized_keys lines tagged TAG
    host_keys: tuple[str, ...] = ()  # "TYPE BASE64" of the host's sshd
    port: int = 22  # the port SSH reached the host at


def request(stack: Stack) -> dict[str, Any]:
    spec = spec_of(stack)
    if spec is None or spec.share is None:
        return {}
    return {"key": KEY, "state": STATE}


def collect(req: dict[str, Any], base: str) -> dict[str, Any]:  # runs on the host
    if not req:
        return {}
    import glob
    import shutil
    import stat

    try:
        state = json.loads(read(os.path.join(base, req["state"])) or "{}")
    except ValueError:
        state = {}
    out = {"key": read(os.path.join(base, req["key"])) or "", "state": state}
    path = state.get("path") if isinstance(state, dict) else None
    if isinstance(path, str) and path.startswith("/"):
        mount = ""
        for line in (read("/proc/self/mountinfo") or "").splitlines():
            left, _, right = line.partition(" - ")
            if left.split()[4:5] == [path.replace(" ", "\\040")]:
                mount = " ".join(right.split()[:2])
        out["mount"] = mount
        out["is_dir"] = mount != "" or os.path.isdir(path)
        # through the mount when there is one, which may hang: in a process with a time limit
        rc, text = run(["cat", "--", os.path.join(path, ".devkit-share")], timeout=5)
        out["marker"] = text.strip() if rc == 0 else None
    fuse = ""
    try:
        if not stat.S_ISCHR(os.stat("/dev/fuse").st_mode):
            fuse = "/dev/fuse is not a device"
    except OSError:
        fuse = "no /dev/fuse"
    if not fuse and "\tfuse\n" not in (read("/proc/filesystems") or "") + "\n":
        fuse = "the kernel has no FUSE"
    out["fuse"] = fuse
    out["sshfs"] = shutil.which("sshfs") is not None
    keys = read(os.path.expanduser("~/.ssh/authorized_keys")) or ""
    out["authorized"] = [ln for ln in keys.splitlines() if " devkit-share " in ln]
    out["host_keys"] = [
        " ".join((read(p) or "").split()[:2]) for p in sorted(glob.glob("/etc/ssh/ssh_host_*.pub"))
    ]
    out["port"] = ([*(os.environ.get("SSH_CONNECTION") or "").split(), "", "", "", ""][3]) or "22"
    return out


REMOTE = (collect,)


def parse(raw: Any) -> ShareFacts:
    raw = raw or {}
    state = raw.get("state")
    port = str(raw.get("port") or "22")
    return ShareFacts(
        str(raw.get("key") or ""),
        state if isinstance(state, dict) else {},
        None if raw.get("marker") is None else str(raw["marker"]),
        str(raw.get("mount") or ""),
        bool(raw.get("is_dir")),
        str(raw.get("fuse") if "fuse" in raw else "not asked"),
        bool(raw.get("sshfs")),
        tuple(str(x) for x in raw.get("authorized") or ()),
        tuple(str(x) for x in raw.get("host_keys") or () if str(x).strip()),
        int(port) if port.isdigit() else 22,
    )


# --- desired --------------------------------------------------------------------------------


class DShare(NamedTuple):
    role: str  # "manager": it offers the folder; "agent": it mounts it
    path: str  # the folder, where every host sees it
    what: str
    before: str  # the service it is mounted before (an agent host)
    key: str  # the cluster's private key
    public: str  # its public key: the marker, and the manager host's authorized line
    source: Source | None = None  # an agent host's: where it mounts from


def desired(b: Build) -> DShare | None:
    """The host's part of the share: none for a host on its own, for an agent host on the manager
    host's filesystem, and where the engine gave nothing (status)."""
    spec = spec_of(b.stack)
    if spec is None or spec.share is None or b.share is None:
        return None
    s = spec.share
    if isinstance(b.share, Offer):
        have: ShareFacts = b.facts.of(NAME)
        key = have.key if public_key(have.key) else ""
        if not key and not b.share.wanted:
            return None  # no agent host needs it, and there is nothing to keep up
        key = key or new_key()
        path = b.render.text(s.path, "cluster.share.path")
        _check_path(path)
        return DShare("manager", path, s.what, s.before, key, public_key(key))
    src: Source = b.share
    if src.filesystem and src.filesystem == b.facts.host.filesystem:
        return None  # the manager host's folder is this host's own
    host = b.facts.host
    mine = layout.on_host(layout.HOME, host.uid, host.home)
    if not any(_under(src.path, top) for top in (host.base, mine)):
        name = b.render.text("{{ host }}", "host")
        raise DevkitError(
            f"{name}: the manager host's shared folder {src.path} (for {s.what}) would be made "
            f"on this host outside its base dir {host.base} and devkit's folder {mine}",
            "Give the cluster's hosts one base dir: the default, or a --base-dir (base_dir) "
            "without {host}.",
        )
    return DShare("agent", src.path, s.what, s.before, src.key, public_key(src.key), src)


def _check_path(path: str) -> None:
    if not path.startswith("/") or ".." in path.split("/") or "\n" in path or path == "/":
        raise DevkitError(f"cluster.share.path {path!r} is not an absolute folder")


def _under(path: str, top: str) -> bool:
    return bool(top) and posixpath.normpath(path).startswith(posixpath.normpath(top) + "/")


# --- plan -----------------------------------------------------------------------------------


def settled(d: DShare, have: ShareFacts) -> bool:
    """Does the agent host see the manager host's folder at its path (mounted, or on one
    filesystem), or, where FUSE cannot mount it, an empty folder there (nothing better to do)?"""
    if have.state.get("path") != d.path:
        return False
    if have.marker == d.public:
        return True
    return have.state.get("how") == "local" and bool(have.fuse) and have.is_dir


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    """The manager host's ops: its copy of the key, the authorized line and the marker."""
    mine: DShare | None = d.of(NAME)
    if mine is None or mine.role != "manager":
        return []
    have: ShareFacts = f.of(NAME)
    ops = []
    if have.key != mine.key:
        ops.append(Op(NAME, "share:key", "create", "the cluster's key (not shown)", mine))
    if authorized_line(mine.public, d.layout.base) not in have.authorized:
        who = f"{f.host.user}'s authorized_keys"
        ops.append(Op(NAME, "share:authorize", "update", f"{who}: the cluster's key, SFTP only"))
    if have.state.get("path") != mine.path or have.marker != mine.public:
        ops.append(Op(NAME, "share:mark", "create", f"{mine.path}/{MARKER}", mine))
    return ops


def steps(d: Desired, f: Facts, service: str, stage: str) -> list[Op]:
    """An agent host's mount, before the service that needs it starts."""
    mine: DShare | None = d.of(NAME)
    if mine is None or mine.role != "agent" or stage != "prestart" or service != mine.before:
        return []
    if settled(mine, f.of(NAME)):
        return []
    assert mine.source is not None
    have: ShareFacts = f.of(NAME)
    how = f"sshfs from {mine.source.user}@{mine.source.address}"
    if have.fuse:
        how = f"{have.fuse}: an empty folder, its sessions run without {mine.what}"
    return [Op(NAME, MOUNT_OP, "mount", f"{mine.path} ({how})", mine)]


# --- apply ----------------------------------------------------------------------------------


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    {
        "share:key": _write_key,
        "share:authorize": _authorize,
        "share:mark": _mark,
        MOUNT_OP: _mount,
    }[op.id](conn, op, ctx)


def _write_key(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    lay = ctx.d.layout
    conn.run(sh("mkdir -p -m 0700 --", q(lay.path(posixpath.dirname(KEY)))), op.id)
    conn.put(lay.path(KEY), ctx.d.of(NAME).key.encode(), 0o600, op.id)


def _authorize(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    """The line, in place of any older one with the cluster's key, through a temp file."""
    mine: DShare = ctx.d.of(NAME)
    blob = mine.public.split()[1]
    f = f"{ctx.f.host.home}/.ssh/authorized_keys"
    tmp = f"{f}.devkit-tmp"
    conn.run(
        join(
            [
                sh("umask 077"),
                sh("mkdir -p --", q(posixpath.dirname(f))),
                sh("touch --", q(f)),
                sh("{ grep -vF --", q(blob), q(f), "|| true; } >", q(tmp)),
                sh(
                    "printf '%s\\n'",
                    q(authorized_line(mine.public, ctx.d.layout.base)),
                    ">>",
                    q(tmp),
                ),
                sh("mv -f --", q(tmp), q(f)),
            ]
        ),
        op.id,
    )


def _mark(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    mine: DShare = ctx.d.of(NAME)
    conn.run(sh("mkdir -p --", q(mine.path)), op.id)
    conn.put(f"{mine.path}/{MARKER}", f"{mine.public}\n".encode(), 0o644, op.id)
    _record(conn, ctx, {"path": mine.path, "how": "offered", "what": mine.what})


def _look(conn: Connection, path: str, op: str) -> str | None:
    """The marker in the folder as the host sees it now (None: unreadable)."""
    r = conn.run(sh("timeout", str(LOOK), "cat --", q(f"{path}/{MARKER}")), op, check=False)
    return r.stdout.strip() if r.rc == 0 else None


def _mount(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    mine: DShare = op.item
    src = mine.source
    assert src is not None
    have: ShareFacts = ctx.f.of(NAME)
    record = {"path": mine.path, "what": mine.what, "source": f"{src.user}@{src.address}"}
    if _look(conn, mine.path, op.id) == mine.public:  # mounted there already (NFS, by you)
        _record(conn, ctx, {**record, "how": "there"})
        return
    p = q(mine.path)
    if have.state.get("path") == mine.path and have.mount.startswith("fuse.sshfs devkit-share:"):
        conn.run(sh("umount -l --", p), op.id)  # devkit's, dead: the manager host or key changed
    record["made"] = _make(conn, mine.path, op.id) or str(have.state.get("made") or "")
    if have.fuse:  # the documented limit: an empty folder, so that the services start
        _record(conn, ctx, {**record, "how": "local", "reason": have.fuse})
        ctx.state.setdefault("notes", []).append(f"{conn.name}: {limit(mine.what, have.fuse)}")
        return
    if not have.sshfs:
        conn.run(packages.install(("sshfs",), ctx.d.is_root), op.id)
    lay = ctx.d.layout
    conn.run(sh("mkdir -p -m 0700 --", q(lay.path(posixpath.dirname(KEY)))), op.id)
    conn.put(lay.path(KEY), mine.key.encode(), 0o600, op.id)
    conn.put(lay.path(KNOWN_HOSTS), known_hosts(src).encode(), 0o600, op.id)
    conn.put(lay.path(SSH_CONFIG), ssh_config(src, lay).encode(), 0o600, op.id)
    busy = f"{mine.path} is a mount of something else: devkit mounts nothing over it"
    conn.run(
        join(
            [
                sh("if mountpoint -q --", p, "; then echo", q(busy), ">&2; exit 3; fi"),
                # allow_other: dockerd and the sessions' users read it too
                sh(
                    "sshfs -F",
                    q(lay.path(SSH_CONFIG)),
                    "-o allow_other,reconnect",
                    q(f"devkit-share:{mine.path}"),
                    p,
                ),
            ]
        ),
        op.id,
    )
    if _look(conn, mine.path, op.id) != mine.public:
        raise RemoteError(
            conn.name,
            op.id,
            f"{mine.path} is mounted, but is not the manager host's folder (no {MARKER} with the "
            "cluster's key in it)",
            hint="Provision the cluster again: the manager host writes it.",
        )
    _record(conn, ctx, {**record, "how": "sshfs"})


def _make(conn: Connection, path: str, op: str) -> str:
    """`mkdir -p PATH`; the top folder it made ("" when PATH was there)."""
    r = conn.run(
        join(
            [
                sh(
                    cat("d=", q(path)),
                    '; made=; while [ ! -e "$d" ]; do made=$d; d=$(dirname -- "$d"); done',
                ),
                sh("mkdir -p --", q(path)),
                sh("printf '%s\\n' \"$made\""),
            ]
        ),
        op,
    )
    return r.stdout.strip()


def known_hosts(src: Source) -> str:
    where = src.address if src.port == 22 else f"[{src.address}]:{src.port}"
    return "".join(f"{where} {k}\n" for k in src.host_keys)


def _quoted(path: str) -> str:
    """A path as ssh_config reads it (double quotes; a path with one is refused first)."""
    if '"' in path or "\n" in path:
        raise DevkitError(f"{path!r}: a path with a double quote cannot go into an ssh_config")
    return f'"{path}"'


def ssh_config(src: Source, lay: layout.Layout) -> str:
    """How sshfs reaches the manager host: its address, the cluster's key, its host keys only."""
    return (
        "# written by devkit: how this host mounts the cluster's shared folder (sshfs -F)\n"
        "Host devkit-share\n"
        f"  HostName {src.address}\n  Port {src.port}\n  User {src.user}\n"
        f"  IdentityFile {_quoted(lay.path(KEY))}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {_quoted(lay.path(KNOWN_HOSTS))}\n  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n"
        "  ServerAliveInterval 15\n  ServerAliveCountMax 3\n"
    )


def _record(conn: Connection, ctx: ApplyContext, state: dict[str, Any]) -> None:
    data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()
    conn.put(ctx.d.layout.path(STATE), data, 0o644, "state")


# --- status and teardown --------------------------------------------------------------------


def limit(what: str, why: str) -> str:
    return (
        f"{what} do not work on this host: it cannot mount the manager host's folder ({why}; "
        "sshfs needs FUSE), so sessions here run without them"
    )


def notes(f: Facts) -> list[str]:
    """One line about the shared folder on an agent host, from the facts alone."""
    have: ShareFacts = f.of(NAME)
    st = have.state
    how, what, path = st.get("how"), st.get("what") or "the shared folder", st.get("path")
    if how == "local":
        return [limit(str(what), str(st.get("reason") or "no FUSE"))]
    if how in ("sshfs", "there") and have.marker is None:
        return [
            f"{what} do not work on this host: {path} is not the manager host's folder any more "
            f"(its mount from {st.get('source')} is gone): `devkit provision` mounts it again"
        ]
    if how == "sshfs":
        return [f"{what}: {path} is mounted from {st.get('source')} (sshfs)"]
    if how == "there":
        return [f"{what}: {path} is the manager host's folder, mounted there by you (NFS, ...)"]
    return []


def undo(f: Facts, base: str, purge: bool) -> list[tuple[Command, str]]:
    """Teardown, each command with what it does: an agent host's mount outside the base dir
    (`teardown` unmounts those inside it) and, with purge, the folders made for it there and the
    manager host's authorized line."""
    have: ShareFacts = f.of(NAME)
    st = have.state
    path, made = str(st.get("path") or ""), str(st.get("made") or "")
    out = []
    if st.get("how") in ("sshfs", "local") and path and not _under(path, base):
        p = q(path)
        if have.mount.startswith("fuse.sshfs devkit-share:"):
            out.append((sh("{ umount --", p, "|| umount -l --", p, "; }"), f"unmounted {path}"))
        if purge and made and (made == path or _under(path, made)):
            # emptied folders only, from the mount point up to the top one devkit made
            rmdirs = sh(
                cat("d=", p),
                '; while rmdir -- "$d" 2>/dev/null && [ "$d" !=',
                q(made),
                ']; do d=$(dirname -- "$d"); done; true',
            )
            out.append((rmdirs, f"removed the empty folders it made for it, up to {made}"))
    blob = [*public_key(have.key).split(), "", ""][1]
    if purge and st.get("how") == "offered" and blob and any(blob in ln for ln in have.authorized):
        keys = f"{f.host.home}/.ssh/authorized_keys"
        tmp = f"{keys}.devkit-tmp"
        drop = sh(
            "{ umask 077; grep -vF --",
            q(blob),
            q(keys),
            ">",
            q(tmp),
            "; mv -f --",
            q(tmp),
            q(keys),
            "; }",
        )
        out.append((drop, f"removed the cluster's key from {keys}"))
    return out


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
refresh = no_refresh
check = no_check
finish = no_finish
diff = no_diff
