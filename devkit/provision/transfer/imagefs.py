"""Root filesystems for container images, made on this machine: `debootstrap --variant=minbase`
from the Debian mirror this machine's apt uses (found as the sandboxes' roots find it), cleaned, and
kept as a gzip tarball in a machine-level cache (one per release, architecture, package set and mirror). A build happens once:
concurrent runs wait on a lock, and the tarball is renamed into place only when whole."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from devkit import debootstrap, paths
from devkit.errors import DevkitError

RECIPE = 1  # bump when the build steps below change: it is part of every cache key
_threads: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class Rootfs(NamedTuple):
    release: str  # bookworm, trixie, ...
    arch: str  # Debian's name: amd64, arm64
    packages: tuple[str, ...]  # sorted
    mirror: str

    @property
    def key(self) -> str:
        """`<release>-<arch>-<hash>`: the cache entry's name and the base image's tag."""
        data = json.dumps([RECIPE, self.release, self.arch, list(self.packages), self.mirror])
        return f"{self.release}-{self.arch}-{hashlib.sha256(data.encode()).hexdigest()[:12]}"


def spec(release: str, machine: str, packages: tuple[str, ...], mirror: str = "") -> Rootfs:
    arch = debootstrap.ARCH.get(machine)
    if arch is None:
        raise DevkitError(
            f"no Debian architecture for a `{machine}` host",
            f"Known: {', '.join(debootstrap.ARCH)}; or pull the images from a registry "
            "([tool.devkit.provision] images).",
        )
    # the Debian archive this machine's apt uses: this machine reaches it, whatever else it reaches
    mirror = mirror or debootstrap.host_mirrors().archive
    return Rootfs(release, arch, tuple(sorted(set(packages))), mirror)


def path(r: Rootfs) -> Path:
    return paths.image_cache_dir() / f"{r.key}.tar.gz"


@contextlib.contextmanager
def _locked(key: str) -> Iterator[None]:
    """One build per key: a thread lock (hosts of one run) and a file lock (other runs)."""
    with _guard:
        lock = _threads.setdefault(key, threading.Lock())
    cache = paths.image_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with lock, (cache / f".{key}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure(r: Rootfs) -> Path:
    """The tarball of `r`, built first when the cache lacks it (a minute or two, once)."""
    final = path(r)
    if final.is_file():
        return final
    with _locked(r.key):
        if not final.is_file():  # another run may have built it while this one waited
            _build(r, final)
    return final


def _need(r: Rootfs) -> None:
    if os.geteuid() != 0:
        raise DevkitError(
            f"building the Debian {r.release} root filesystem of a kernel image needs root on "
            "this machine (debootstrap)",
            "Run devkit as root once (the tarball is cached), or pull images from a registry "
            "([tool.devkit.provision] images).",
        )
    if not shutil.which("debootstrap"):
        raise DevkitError(
            "debootstrap is not installed: it builds the kernel image's root filesystem",
            "apt-get install debootstrap (or run `bash .ci/setup`).",
        )
    here = debootstrap.arch()
    if here != r.arch:
        raise DevkitError(
            f"the host is {r.arch} but this machine is {here}: debootstrap builds only its own",
            "Build the image on a machine of the host's architecture, or pull it from a registry.",
        )


def _build(r: Rootfs, final: Path) -> None:
    _need(r)
    cache = final.parent
    tmp, log = cache / f".{r.key}.tmp", cache / f".{r.key}.log"
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.monotonic()
    try:
        what = f"the {r.release} ({r.arch}) root filesystem of a kernel image"
        debootstrap.build(r.release, tmp, r.packages, r.mirror, log, what, r.arch)
        debootstrap.clean(tmp)
        part = cache / f".{r.key}.tar.gz.part"
        with part.open("wb") as out:
            tar = subprocess.Popen(
                ["tar", "-C", str(tmp), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
            )
            gz = subprocess.run(["gzip", "-1"], stdin=tar.stdout, stdout=out, check=False)
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0 or gz.returncode != 0:
                raise DevkitError(f"packing the {r.release} root filesystem into {part} failed")
        info = {**r._asdict(), "key": r.key, "seconds": round(time.monotonic() - start, 1)}
        final.with_suffix("").with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
        os.rename(part, final)
        log.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
