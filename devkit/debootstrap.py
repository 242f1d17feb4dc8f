"""debootstrap on this machine: the Debian roots of sandboxes (devkit.sandbox.rootfs) and of
container images (devkit.provision.transfer.imagefs) are built the same way, from the Debian mirror
this machine's apt uses, in a private mount and PID namespace, under a file lock per cache entry."""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from devkit import proc
from devkit.errors import DevkitError

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
ARCHIVE = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
# the kernel's machine name -> Debian's architecture name
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "ppc64le": "ppc64el"}
_DEB_LINE = re.compile(r"^deb\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)")


class Mirrors(NamedTuple):
    archive: str  # the Debian archive, e.g. http://deb.debian.org/debian
    security: str  # its security archive, e.g. http://deb.debian.org/debian-security

    def hosts(self) -> list[str]:
        return sorted({urlsplit(u).hostname or "" for u in self} - {""})


def _apt_entries(text: str, deb822: bool) -> list[tuple[str, list[str], str]]:
    """(URI, suites, Signed-By) of each `deb` entry of a one-line .list or a deb822 .sources text."""
    out = []
    if deb822:
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split(), fields.get("signed-by", "")))
        return out
    for line in text.splitlines():
        m = _DEB_LINE.match(line.split("#", 1)[0].strip())
        if m:
            out.append((m.group("uri"), [m.group("suite")], m.group("options") or ""))
    return out


def mirrors(sources: list[tuple[str, str]]) -> Mirrors:
    """The Debian archive and security archive among apt sources ((file name, text) pairs); Debian's
    own deb.debian.org where the machine has none (an Ubuntu host)."""
    archive = security = ""
    for name, text in sources:
        for uri, suites, signed in _apt_entries(text, name.endswith(".sources")):
            debian = "debian-archive-keyring" in signed or uri.rstrip("/").endswith(
                ("/debian", "/debian-security")
            )
            if not debian or not uri.startswith(("http://", "https://")):
                continue
            if any(s.endswith("-security") for s in suites) or uri.rstrip("/").endswith(
                "-security"
            ):
                security = security or uri.rstrip("/")
            else:
                archive = archive or uri.rstrip("/")
    return Mirrors(archive or ARCHIVE, security or SECURITY)


def host_mirrors() -> Mirrors:
    files = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    texts = []
    for f in files:
        try:
            texts.append((f.name, f.read_text(errors="replace")))
        except OSError:
            continue
    return mirrors(texts)


def arch() -> str:
    """This machine's Debian architecture (debootstrap builds only its own)."""
    r = proc.run("dpkg", "--print-architecture")
    if r.returncode != 0:
        raise DevkitError(
            "cannot tell this machine's Debian architecture (`dpkg --print-architecture`)",
            "debootstrap needs a Debian or Ubuntu machine.",
        )
    return r.out.strip()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive file lock (concurrent runs build a cache entry once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def build(
    release: str, target: Path, packages: tuple[str, ...], mirror: str, log: Path, what: str,
    architecture: str = "",
) -> None:  # fmt: skip
    """`debootstrap --variant=minbase` of `release` into `target`, its output in `log`; a failure
    is one DevkitError (`what` names the root) with the log's last lines."""
    cmd = [
        # a private mount and PID namespace: debootstrap's /proc and /sys mounts in the target,
        # and anything a package script leaves running, go when it ends
        *("unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private"),
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(packages)}",
        *([f"--keyring={KEYRING}"] if Path(KEYRING).is_file() else []),
        *([f"--arch={architecture}"] if architecture else []),
        release,
        str(target),
        mirror,
    ]
    with log.open("wb") as fh:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise DevkitError(
            f"{what}: debootstrap of {release} from {mirror} failed: {' / '.join(tail)}",
            f"The whole log: {log}",
        )


def clean(root: Path) -> None:
    """What a reusable root must not carry: apt's downloads and lists, this machine's hostname,
    resolv.conf and machine id (each sandbox or container gets its own)."""
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    for f in ("etc/hostname", "etc/resolv.conf", "etc/machine-id"):
        with contextlib.suppress(FileNotFoundError):
            (root / f).unlink()
    (root / "etc/machine-id").write_text("")
