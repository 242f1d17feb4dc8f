"""Where a stack's code comes from: a source spec parsed once into a `Source`, and the `Code` it
brings (its VERSION, interpreter and pins), settled before any template renders.

A spec is `pypi` or `none` (the released wheels: no checkout), `URL[@REF]` (cloned on the host),
`PATH[@REF]` (a git bundle or a repository on this machine, sent over the connection) or `local`
(the clone devkit runs from, its branch pushed). What a ref of a source on this machine brings is
read here with `git show`, before anything is sent; a URL's is known once the host has cloned it.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from devkit.errors import DevkitError
from devkit.provision.onhost.facts import source_facts

NONE = ("", "none", "pypi")
FILES = ("pants.toml", "VERSION", "requirements.txt", "python.lock")  # read from a ref here


class Source(NamedTuple):
    kind: str  # "url", "bundle" (a file here), "repo" (a repository here), "local" (pushed)
    location: str  # the URL, or an absolute path on this machine
    ref: str  # the branch or tag to check out ("" = the source's default)
    commit: str = ""  # local: the commit of that branch here, which the host's checkout follows

    @property
    def spec(self) -> str:
        return f"{self.location}@{self.ref}" if self.ref else self.location


class Code(NamedTuple):
    """What runs: the released wheels (source None) or a source, with what its ref says ("" while
    it is not known: a URL the host has not cloned yet)."""

    source: Source | None
    version: str = ""  # its VERSION
    python: str = ""  # the CPython version its pants.toml asks for ("3.11.8")
    pins: str = ""  # a hash of its pins (requirements.txt and the lock)

    @property
    def known(self) -> bool:
        """Is what the source brings known (always, for the wheels)?"""
        return self.source is None or bool(self.version or self.python)


WHEELS = Code(None)


def parse(text: str, where: str) -> Source | None:
    """`URL[@REF]` or `PATH[@REF]` (a bundle or a repository on this machine); None for no checkout."""
    text = text.strip()
    if text.lower() in NONE:
        return None
    if text.lower() == "local":
        return local(Path.cwd(), where)
    location, ref = text, ""
    at = text.rfind("@")
    if at > 0 and "/" not in text[at:] and not text[:at].endswith(":"):
        location, ref = text[:at], text[at + 1 :]
    if ref and not re.fullmatch(r"[A-Za-z0-9._/-]+", ref):
        raise DevkitError(f"{where}: `{ref}` is not a branch or tag name")
    if re.match(r"^(https?|ssh|git)://", location) or re.match(r"^[\w.-]+@[\w.-]+:", location):
        return Source("url", location, ref)
    path = Path(location).expanduser()
    if path.is_file():
        return Source("bundle", str(path.resolve()), ref)
    if (path / ".git").exists() or (path / "HEAD").is_file():
        return Source("repo", str(path.resolve()), ref)
    raise DevkitError(
        f"{where}: `{location}` is neither a git URL nor a bundle or repository on this machine",
        "Give https://host/org/repo@REF, /path/to/repo@REF or /path/to/file.bundle@REF "
        '(or "pypi" for the released wheels).',
    )


def local(path: Path, where: str) -> Source:
    """The clone at (or above) path: its branch and commit, pushed to the host as they are."""

    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "-q", "--verify", "HEAD^{commit}")
    if not top or not commit:
        raise DevkitError(
            f"{where}: `local` is the git clone devkit is run from, and {path} is not in one "
            "(or it has no commit yet)",
            "Run devkit from your clone of the project, or give PATH@REF or URL@REF.",
        )
    return Source("local", top, git("symbolic-ref", "-q", "--short", "HEAD"), commit)


def read(source: Source) -> Code:
    """What the source's ref brings, read on this machine (nothing for a URL)."""
    files = _files(source)
    if not files:
        return Code(source)
    said = source_facts(files.get)
    return Code(source, said["version"], said["python"], said["pins"])


def _files(source: Source) -> dict[str, str]:
    """FILES of the source's ref (none for a URL): `git show` in a repository; a bundle is fetched
    once into a throwaway repository for all of them."""
    if source.kind == "url":
        return {}
    ref = source.commit or source.ref or "HEAD"
    if source.kind in ("repo", "local"):
        return _show(["git", "-C", source.location], ref)
    st = os.stat(source.location)
    return dict(_bundle_files(source.location, ref, st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _bundle_files(path: str, ref: str, mtime: int, size: int) -> tuple[tuple[str, str], ...]:
    # mtime and size key the cache: a bundle written again is read again
    with tempfile.TemporaryDirectory(prefix="devkit-bundle-") as tmp:
        subprocess.run(["git", "init", "-q", tmp], capture_output=True, check=False)
        got = subprocess.run(
            ["git", "-C", tmp, "fetch", "-q", path, ref], capture_output=True, check=False
        )
        if got.returncode != 0:
            return ()
        return tuple(_show(["git", "-C", tmp], "FETCH_HEAD").items())


def _show(git: list[str], rev: str) -> dict[str, str]:
    out = {}
    for name in FILES:
        r = subprocess.run(
            [*git, "show", f"{rev}:{name}"], capture_output=True, text=True, check=False
        )
        if r.returncode == 0:
            out[name] = r.stdout
    return out
