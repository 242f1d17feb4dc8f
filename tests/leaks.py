"""What a test run could leave on the machine: network namespaces, links, mounts, devkit's temp
folders and state, users, and processes that use them. tests/conftest.py compares a snapshot taken
before the session with one taken after, and fails the run on anything new."""

from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path
from typing import NamedTuple

# the folders devkit's tests and devkit itself make outside a test's own tmp_path
TEMP_GLOBS = ("/tmp/dk*", "/tmp/devkit-*", "/tmp/.devkit-*", "/var/lib/devkit", "/var/lib/devkit/*")


class Snapshot(NamedTuple):
    netns: frozenset[str]
    links: frozenset[str]
    mounts: frozenset[str]
    paths: frozenset[str]
    users: frozenset[str]
    processes: frozenset[tuple[int, str]]  # (pid, command line) of processes that use the paths


def _out(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def _users() -> frozenset[str]:
    try:
        text = Path("/etc/passwd").read_text()
    except OSError:
        return frozenset()
    return frozenset(line.split(":", 1)[0] for line in text.splitlines() if line)


def _processes(paths: frozenset[str]) -> frozenset[tuple[int, str]]:
    if not paths:
        return frozenset()
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if any(p in cmd or cwd.startswith(p) for p in paths):
            found.add((int(proc.name), cmd.strip()[:200]))
    return frozenset(found)


def snapshot(ignore: frozenset[str] = frozenset()) -> Snapshot:
    paths = frozenset(p for g in TEMP_GLOBS for p in glob.glob(g)) - ignore
    return Snapshot(
        frozenset(line.split()[0] for line in _out("ip", "netns", "list").splitlines() if line),
        frozenset(
            line.split(":")[1].strip().split("@")[0]
            for line in _out("ip", "-o", "link", "show").splitlines()
            if ":" in line
        ),
        frozenset(
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(("/tmp/dk", "/var/lib/devkit", "/tmp/devkit"))
        ),
        paths,
        _users(),
        _processes(paths),
    )


def left_behind(before: Snapshot, after: Snapshot) -> list[str]:
    """What `after` has that `before` had not, a line each (processes: those using new paths)."""
    out = []
    for field in ("netns", "links", "mounts", "paths", "users"):
        for item in sorted(getattr(after, field) - getattr(before, field)):
            out.append(f"{field}: {item}")
    new_paths = after.paths - before.paths
    for pid, cmd in sorted(after.processes):
        if any(p in cmd for p in new_paths) or (pid, cmd) not in before.processes:
            out.append(f"process {pid}: {cmd}")
    return out
