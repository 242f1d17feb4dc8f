"""Wheels fetched on this machine and uploaded, so a host without PyPI access (a sandbox namespace, a
firewalled VM) can still build its venvs; the cache also makes a second host's install fast.

Where they are kept: `--wheelhouse DIR` (used offline first, filled from PyPI only when something is
missing), else $DEVKIT_WHEEL_CACHE, else <state dir>/wheels/<spec>. Only wheels go to the host: when
this machine runs the host's Python version, `pip wheel` also builds the few sdists into wheels.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import sys
import threading
from pathlib import Path
from typing import Protocol

from devkit import paths, proc
from devkit.errors import RemoteError
from devkit.provision.ssh.command import q, sh
from devkit.provision.ssh.connection import Connection


class Pins(Protocol):
    """What a venv's wheels are fetched for (the venvs kind's desired venv is one)."""

    @property
    def spec(self) -> str: ...
    @property
    def requirements(self) -> tuple[str, ...]: ...
    @property
    def constraints(self) -> tuple[str, ...]: ...


_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _platforms(machine: str) -> list[str]:
    tags = [f"manylinux_2_{n}_{machine}" for n in range(17, 40)]
    return [*tags, f"manylinux2014_{machine}", f"linux_{machine}"]


def cache_root() -> Path:
    return Path(os.environ.get("DEVKIT_WHEEL_CACHE") or paths.state_dir() / "wheels")


def _pip(v: Pins, dest: Path, major_minor: str, machine: str, offline: bool) -> list[str]:
    cons = dest / f".constraints-{v.spec}.txt"
    cons.write_text("".join(c + "\n" for c in v.constraints))
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    base = [sys.executable, "-m", "pip"]
    common = ["-q", "--disable-pip-version-check", "--find-links", str(dest), "-c", str(cons)]
    if offline:
        common.append("--no-index")
    if here == major_minor and platform.machine() == machine:
        return [*base, "wheel", *common, "-w", str(dest), *v.requirements]
    cmd = [*base, "download", *common, "--only-binary=:all:", "--python-version", major_minor]
    cmd += ["--implementation", "cp", "-d", str(dest)]
    for p in _platforms(machine):
        cmd += ["--platform", p]
    return [*cmd, *v.requirements]


def download(
    v: Pins, python_version: str, machine: str, host: str, op: str, wheelhouse: str = ""
) -> Path:
    """A directory with every wheel `v` needs for the remote interpreter (one fetch per spec)."""
    major_minor = ".".join(python_version.split(".")[:2])
    key = hashlib.sha256(f"{v.spec}\0{major_minor}\0{machine}".encode()).hexdigest()[:16]
    dest = Path(wheelhouse).expanduser() if wheelhouse else cache_root() / key
    with _guard:
        lock = _locks.setdefault(str(dest), threading.Lock())
    with lock:
        marker = dest / f".complete-{key}"
        if marker.exists():
            return dest
        dest.mkdir(parents=True, exist_ok=True)
        r = proc.run(*_pip(v, dest, major_minor, machine, offline=True))
        if r.returncode != 0:
            cmd = _pip(v, dest, major_minor, machine, offline=False)
            r = proc.run(*cmd)
            if r.returncode != 0:
                raise RemoteError(
                    host,
                    op,
                    "fetching wheels on this machine failed",
                    shlex.join(cmd),
                    r.returncode,
                    "\n".join(r.err.strip().splitlines()[-8:]),
                    hint="Check this machine's PyPI access (pip config), put the wheels into "
                    '--wheelhouse DIR, or set wheels = "remote" in the stack.',
                )
        marker.touch()
    return dest


def upload(conn: Connection, local: Path, remote_dir: str, op: str) -> None:
    """Put every wheel not already there (same name and size) into remote_dir, atomically each."""
    listing = conn.run(
        sh(
            "mkdir -p --",
            q(remote_dir),
            "&& find",
            q(remote_dir),
            "-maxdepth 1 -name '*.whl' -printf '%f %s\\n'",
        ),
        op,
    ).stdout
    have = {}
    for line in listing.splitlines():
        name, _, size = line.rpartition(" ")
        if size.isdigit():
            have[name] = int(size)
    for whl in sorted(local.glob("*.whl")):
        if have.get(whl.name) != whl.stat().st_size:
            conn.put(f"{remote_dir}/{whl.name}", whl.read_bytes(), 0o644, op)
