"""A cgroup per isolated sandbox, in every hierarchy this machine mounts, for dockerd inside it.

The sandbox's first process joins them before it unshares its cgroup namespace, so inside the sandbox
they are the root of each hierarchy: dockerd (and anything else) creates its cgroups below them and
never sees this machine's. They sit at the top of each hierarchy, like LXC's, named
devkit-<tag>-<sandbox>; `sandbox down` removes them once every process in them is gone.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import NamedTuple


class Hierarchy(NamedTuple):
    mount: str  # where this machine mounts it, e.g. /sys/fs/cgroup/cpu
    fstype: str  # cgroup (v1) or cgroup2
    options: str  # the v1 controllers or name=, as mount options (e.g. "cpu", "name=systemd")


def _unescape(field: str) -> str:
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def hierarchies(mountinfo: str) -> list[Hierarchy]:
    """The cgroup hierarchies mounted under /sys/fs/cgroup, from a /proc/self/mountinfo text."""
    out: dict[str, Hierarchy] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mount = _unescape(fields[4])
        if mount != "/sys/fs/cgroup" and not mount.startswith("/sys/fs/cgroup/"):
            continue
        opts = [o for o in tail[2].split(",") if o not in ("rw", "ro")]
        if tail[0] == "cgroup":
            opts = [o for o in opts if o not in ("clone_children", "noprefix", "xattr")]
            opts = [o for o in opts if not o.startswith("release_agent=")]
        out[mount] = Hierarchy(mount, tail[0], ",".join(opts) if tail[0] == "cgroup" else "")
    return list(out.values())


def machine() -> list[Hierarchy]:
    return hierarchies(Path("/proc/self/mountinfo").read_text())


def spec(hs: list[Hierarchy]) -> str:
    """The hierarchies as boot.sh mounts them inside: one `TYPE DIR OPTIONS` line each; DIR is the
    name under /sys/fs/cgroup, `.` for a pure cgroup v2 machine."""
    lines = []
    for h in hs:
        name = "." if h.mount == "/sys/fs/cgroup" else h.mount.rsplit("/", 1)[1]
        lines.append(f"{h.fstype} {name} {h.options or '-'}")
    return "\n".join(lines)


def dirs(hs: list[Hierarchy], name: str) -> list[Path]:
    return [Path(h.mount) / name for h in hs]


def create(hs: list[Hierarchy], name: str) -> list[Path]:
    out = []
    for h, d in zip(hs, dirs(hs, name), strict=True):
        d.mkdir(exist_ok=True)
        if "cpuset" in h.options.split(","):
            # a v1 cpuset takes no task until it has cpus and mems: the parent's
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((d.parent / f).read_text())
        out.append(d)
    return out


def park(hs: list[Hierarchy], name: str, pid: int) -> None:
    """On a pure cgroup v2 machine, move `pid` (unshare, outside the sandbox) into a leaf of the
    sandbox's cgroup: v2 hands controllers down only from a cgroup without processes of its own, and
    the sandbox's init hands them to dockerd from there (init.py)."""
    for h in hs:
        if h.fstype == "cgroup2" and h.mount == "/sys/fs/cgroup":
            leaf = Path(h.mount) / name / "devkit-host"
            leaf.mkdir(exist_ok=True)
            (leaf / "cgroup.procs").write_text(str(pid))


def procs(ds: list[Path]) -> list[int]:
    """Every process in these cgroups and below them."""
    found: set[int] = set()
    for d in ds:
        for f in d.rglob("cgroup.procs") if d.is_dir() else []:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in f.read_text().split())
    return sorted(found)


def remove(ds: list[Path], timeout: float = 10.0) -> list[Path]:
    """rmdir the cgroups, deepest first (dockerd's own below ours), once their processes are gone;
    the ones still busy after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for d in ds:
            if not d.is_dir():
                continue
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(d)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def join_command(ds: list[Path]) -> list[str]:
    """A command prefix that moves itself into these cgroups, then execs the rest of the command."""
    script = 'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "devkit-cgroups", *(str(d) for d in ds), "--"]
