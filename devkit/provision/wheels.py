"""Wheels fetched on this machine and uploaded, so a host without PyPI access (a sandbox namespace, a
firewalled VM) can still build its venvs; the cache also makes a second host's install fast."""

from __future__ import annotations

import hashlib
import shlex
import sys
import threading
from pathlib import Path

from devkit import proc
from devkit.errors import RemoteError
from devkit.provision import paths
from devkit.provision.connect import Remote
from devkit.provision.desired import DVenv

_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _platforms(machine: str) -> list[str]:
    tags = [f"manylinux_2_{n}_{machine}" for n in range(17, 40)]
    return [*tags, f"manylinux2014_{machine}", f"linux_{machine}"]


def download(v: DVenv, python_version: str, machine: str, host: str, op: str) -> Path:
    """Wheels for `v` for the remote interpreter, cached under the state dir (one download per spec)."""
    major_minor = ".".join(python_version.split(".")[:2])
    key = hashlib.sha256(f"{v.spec}\0{major_minor}\0{machine}".encode()).hexdigest()[:16]
    dest = paths.state_dir() / "wheels" / key
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if (dest / ".complete").exists():
            return dest
        dest.mkdir(parents=True, exist_ok=True)
        cons = dest / "constraints.txt"
        cons.write_text("".join(c + "\n" for c in v.constraints))
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version",
            major_minor,
            "--implementation",
            "cp",
            "-d",
            str(dest),
            "-c",
            str(cons),
        ]
        for p in _platforms(machine):
            cmd += ["--platform", p]
        r = proc.run(*cmd, *v.requirements)
        if r.returncode != 0:
            raise RemoteError(
                host,
                op,
                "downloading wheels on this machine failed",
                " ".join(cmd),
                r.returncode,
                "\n".join(r.err.strip().splitlines()[-8:]),
                hint='Check this machine\'s PyPI access (pip config), or set wheels = "remote".',
            )
        (dest / ".complete").touch()
    return dest


def upload(r: Remote, local: Path, remote_dir: str, op: str) -> None:
    """Put every wheel not already there (same name and size) into remote_dir, atomically each."""
    r.run(f"mkdir -p -- {shlex.quote(remote_dir)}", op)
    sftp = r.cx.sftp()
    have = {a.filename: a.st_size for a in sftp.listdir_attr(remote_dir)}
    for whl in sorted(local.glob("*.whl")):
        if have.get(whl.name) != whl.stat().st_size:
            r.write(f"{remote_dir}/{whl.name}", whl.read_bytes(), 0o644, op)
