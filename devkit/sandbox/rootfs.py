"""Debian root filesystems for isolated sandboxes: debootstrap once per release and architecture.

The cache is machine-level ($DEVKIT_ROOTFS_CACHE, else /var/cache/devkit/rootfs), so every state dir,
test run and later run shares it. A root is built into a temp dir inside a private mount and PID
namespace (debootstrap mounts /proc and /sys in its target) and renamed into place under a lock: an
interrupted build leaves nothing half-made, and concurrent runs build it once. Sandboxes never write
to it: each one overlays its own layer on top.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

from devkit import debootstrap, paths, proc
from devkit.errors import DevkitError

RELEASES = {"bookworm": "12", "trixie": "13"}
# Debian 13, the stable release: Python 3.13, the current Backend.AI line
DEFAULT_RELEASE = "trixie"
# what devkit itself needs on a host (sshd, the facts script, venvs, TLS), plus `ip` and `ps` to look around
PACKAGES = ("openssh-server", "python3", "python3-venv", "ca-certificates", "iproute2", "procps")
RECIPE = 1  # bump when the build steps below change: it is part of every cache key
CA_DIR = Path("/usr/local/share/ca-certificates")
INFO = "devkit-rootfs.json"


class Root(NamedTuple):
    release: str
    arch: str
    path: Path


def check_release(release: str) -> None:
    if release not in RELEASES:
        known = ", ".join(f"{r} (Debian {v})" for r, v in RELEASES.items())
        raise DevkitError(
            f"sandbox: unknown release `{release}`: devkit's sandboxes know {known}",
            f"Use --release {DEFAULT_RELEASE} (the default) or another of those.",
        )


def extra_cas() -> list[Path]:
    """The machine's own CA certificates (a TLS-intercepting proxy's CA, a company CA): the sandbox
    needs them to trust what this machine trusts."""
    return sorted(p for p in CA_DIR.rglob("*.crt") if p.is_file()) if CA_DIR.is_dir() else []


def cache_key(release: str, architecture: str, m: debootstrap.Mirrors, cas: list[Path]) -> str:
    h = hashlib.sha256(json.dumps([RECIPE, release, architecture, list(m), PACKAGES]).encode())
    for ca in cas:
        h.update(ca.name.encode() + b"\0" + ca.read_bytes())
    return f"{release}-{architecture}-{h.hexdigest()[:10]}"


def sources_text(release: str, m: debootstrap.Mirrors) -> str:
    return (
        f"Types: deb\nURIs: {m.archive}\nSuites: {release} {release}-updates\n"
        f"Components: main\nSigned-By: {debootstrap.KEYRING}\n\n"
        f"Types: deb\nURIs: {m.security}\nSuites: {release}-security\n"
        f"Components: main\nSigned-By: {debootstrap.KEYRING}\n"
    )


# sshd as devkit runs it inside every sandbox: keys only, one ed25519 host key per sandbox (written
# at `sandbox up`), no PAM (there is no login session manager to talk to)
SSHD_CONFIG = """\
# devkit sandbox: read before the settings of sshd_config (the first value wins)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
"""


def _finish(target: Path, release: str, m: debootstrap.Mirrors, cas: list[Path]) -> None:
    """Make a fresh debootstrap root a devkit base: no shared host keys, no services started by
    package scripts, apt sources of this machine's mirrors, this machine's CAs trusted."""
    for key in (target / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (target / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (target / "etc/ssh/sshd_config.d/devkit.conf").write_text(SSHD_CONFIG)
    # like every container image: package scripts never start daemons (provisioning starts them)
    policy = target / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# devkit sandbox: package scripts start no services\nexit 101\n")
    policy.chmod(0o755)
    (target / "etc/apt/sources.list").write_text("")
    (target / "etc/apt/sources.list.d/debian.sources").write_text(sources_text(release, m))
    debootstrap.clean(target)
    if cas:
        dest = target / "usr/local/share/ca-certificates/devkit-host"
        dest.mkdir(parents=True, exist_ok=True)
        for ca in cas:
            shutil.copy2(ca, dest / ca.name)
        r = proc.run("chroot", str(target), "update-ca-certificates")
        if r.returncode != 0:
            raise DevkitError(f"sandbox: update-ca-certificates failed: {r.err.strip()[-300:]}")


def ensure(release: str, say: bool = True) -> Root:
    """The cached base root of `release` for this machine, built first if missing (about a minute)."""
    check_release(release)
    architecture = debootstrap.arch()
    m, cas = debootstrap.host_mirrors(), extra_cas()
    cache = paths.rootfs_cache_dir()
    final = cache / cache_key(release, architecture, m, cas)
    if (final / INFO).is_file():
        return Root(release, architecture, final)
    if os.geteuid() != 0:
        raise DevkitError(
            f"sandbox: building the Debian {release} root needs root (debootstrap)",
            "Run it as root (sudo).",
        )
    if not shutil.which("debootstrap"):
        raise DevkitError(
            f"sandbox: debootstrap is not installed: it builds the sandbox's Debian {release} root",
            "apt-get install debootstrap (or run `bash .ci/setup`).",
        )
    if not Path(debootstrap.KEYRING).is_file():
        raise DevkitError(
            f"sandbox: {debootstrap.KEYRING} is missing: debootstrap checks Debian's archive with it",
            "apt-get install debian-archive-keyring.",
        )
    with debootstrap.locked(cache / f".{final.name}.lock"):
        if (final / INFO).is_file():  # another run built it while this one waited
            return Root(release, architecture, final)
        if say:
            sys.stderr.write(
                f"devkit: building the Debian {release} root filesystem for sandboxes from "
                f"{m.archive} (debootstrap, about a minute, once: cached in {cache})\n"
            )
        tmp = cache / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        log = cache / f".{final.name}.log"
        start = time.monotonic()
        try:
            debootstrap.build(release, tmp, PACKAGES, m.archive, log, "sandbox")
            _finish(tmp, release, m, cas)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        info = {
            "release": release,
            "version": (tmp / "etc/debian_version").read_text().strip(),
            "arch": architecture,
            "mirror": m.archive,
            "security": m.security,
            "packages": list(PACKAGES),
            "extra_cas": [c.name for c in cas],
            "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.monotonic() - start, 1),
        }
        (tmp / INFO).write_text(json.dumps(info, indent=2) + "\n")
        os.rename(tmp, final)
        log.unlink()
    return Root(release, architecture, final)


def cached() -> list[tuple[Path, dict[str, object]]]:
    """Every cached root with its build record."""
    cache = paths.rootfs_cache_dir()
    out = []
    for d in sorted(cache.glob("*-*-*")) if cache.is_dir() else []:
        try:
            out.append((d, json.loads((d / INFO).read_text())))
        except (OSError, ValueError):
            continue
    return out


def in_use(path: Path) -> bool:
    """Does a running sandbox anywhere on this machine (any state dir) overlay this root? Each mount
    namespace's table is read once."""
    needle, seen = f"lowerdir={path},".encode(), set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ns = os.readlink(p / "ns/mnt")
            if ns in seen:
                continue
            seen.add(ns)
            if needle in (p / "mountinfo").read_bytes():
                return True
        except OSError:
            continue
    return False


def remove(path: Path) -> None:
    """Delete one cached root (never one a running sandbox overlays: the caller checks)."""
    with debootstrap.locked(
        path.parent / f".{path.name}.lock"
    ):  # (kept: a build may be waiting on it)
        shutil.rmtree(path)
