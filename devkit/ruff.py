"""Which ruff lints a project: the version the project's gate pins, installed once into a cache from
PyPI (as pre-commit installs its hook environments), else the ruff installed with devkit, else devkit's
default version installed the same way.

The pin is looked up in order: `[tool.devkit.lint] ruff`, `pants.toml` (Backend.AI's gate: `[ruff]
version`, or `[ruff] install_from_resolve` and that resolve's lock file), then the `rev` of
astral-sh/ruff-pre-commit in `.pre-commit-config.yaml` (a project whose gate is pre-commit). When the
gate pins one version and the pre-commit config another, `devkit doctor` reports the drift and
`devkit lint --sync-pre-commit` rewrites the rev.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

from devkit import files, proc
from devkit.errors import ConfigError

VERSION_RE = r"\d+\.\d+\.\d+(?:[a-z]+\d+)?"
_PRE_COMMIT_REPO = re.compile(
    r"^\s*-\s*repo:\s*['\"]?https://github\.com/astral-sh/ruff-pre-commit"
)
_REV = re.compile(rf"^\s*rev:\s*['\"]?v?({VERSION_RE})['\"]?\s*(?:#.*)?$")
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
PRE_COMMIT_SOURCE = "the ruff-pre-commit rev in .pre-commit-config.yaml"
# the ruff devkit is tested with: run when the project pins none and no ruff is installed beside devkit
DEFAULT_VERSION = "0.17.6"


class RuffMissing(Exception):
    """ruff cannot be found, installed or started: the lint check cannot run."""


class Pin(NamedTuple):
    version: str
    source: str  # where the pin was found, for the report


class Ruff(NamedTuple):
    cmd: list[str]
    version: str
    source: str  # "pinned in pants.toml", "devkit's own", ...

    @property
    def label(self) -> str:
        return f"ruff {self.version} ({self.source})"


def find_pin(root: Path, configured: str | None = None) -> Pin | None:
    """The ruff version the project's gate pins, or None when it pins none."""
    if configured:
        return Pin(configured, "[tool.devkit.lint] ruff")
    return pants_pin(root) or pre_commit_pin(root)


def pre_commit_pin(root: Path) -> Pin | None:
    """The `rev` of astral-sh/ruff-pre-commit in .pre-commit-config.yaml."""
    found = _pre_commit_rev(root)
    return Pin(found[1], PRE_COMMIT_SOURCE) if found else None


def _pre_commit_rev(root: Path) -> tuple[int, str] | None:
    """(line index, version) of ruff-pre-commit's `rev:` line."""
    pre_commit = root / PRE_COMMIT_CONFIG
    if not pre_commit.is_file():
        return None
    lines = pre_commit.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines):
        if _PRE_COMMIT_REPO.match(line):
            for j in range(i + 1, min(i + 4, len(lines))):
                m = _REV.match(lines[j])
                if m:
                    return j, m.group(1)
    return None


def _toml(path: Path) -> dict | None:
    """A TOML file through devkit's one guarded loader (size, nesting), or None when unreadable."""
    if not path.is_file():
        return None
    try:
        return files.read_toml(path)
    except ConfigError:
        return None


def _table(data: object, *keys: str) -> dict:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def pants_pin(root: Path) -> Pin | None:
    """pants.toml's `[ruff] version`, or the ruff locked in `[ruff] install_from_resolve`'s lock file."""
    data = _toml(root / "pants.toml")
    if data is None:
        return None
    section = _table(data, "ruff")
    version = section.get("version")
    if isinstance(version, str) and re.fullmatch(VERSION_RE, version):
        return Pin(version, "[ruff] version in pants.toml")
    resolve = section.get("install_from_resolve")
    lock = _table(data, "python", "resolves").get(resolve) if isinstance(resolve, str) else None
    if not isinstance(lock, str):
        return None
    version = locked_version(root / lock, "ruff")
    if version is None:
        return None
    return Pin(version, f"{lock}, the lock of pants.toml's [ruff] install_from_resolve")


def locked_version(lock: Path, name: str) -> str | None:
    """A package's version in a Pants lock file: pex's JSON (after its `//` header) or uv's TOML."""
    try:
        text = lock.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    try:
        resolves = json.loads(body).get("locked_resolves", [])
        found = [
            r.get("version")
            for resolve in resolves
            for r in resolve.get("locked_requirements", [])
            if r.get("project_name") == name
        ]
    except (ValueError, AttributeError):
        data = _toml(lock) or {}
        packages = data.get("package", [])
        found = [
            p.get("version") for p in packages if isinstance(p, dict) and p.get("name") == name
        ]
    version = found[0] if found else None
    return version if isinstance(version, str) and re.fullmatch(VERSION_RE, version) else None


class Drift(NamedTuple):
    gate: Pin  # what `devkit lint` runs
    pre_commit: str  # the version ruff-pre-commit's rev installs


def drift(root: Path, configured: str | None = None) -> Drift | None:
    """The gate pins one ruff, the pre-commit config runs another (None when they agree)."""
    gate = find_pin(root, configured)
    hook = pre_commit_pin(root)
    if gate is None or hook is None or gate.version == hook.version:
        return None
    return Drift(gate, hook.version)


def sync_pre_commit(root: Path, version: str) -> str | None:
    """Set ruff-pre-commit's rev to version (the rest of the file kept byte for byte); returns the
    version it had, None when there is no ruff-pre-commit entry."""
    found = _pre_commit_rev(root)
    if found is None:
        return None
    index, old = found
    path = root / PRE_COMMIT_CONFIG
    lines = path.read_bytes().decode("utf-8", "surrogateescape").splitlines(keepends=True)
    lines[index] = lines[index].replace(old, version, 1)
    data = "".join(lines).encode("utf-8", "surrogateescape")
    files.write_whole(path, data, path.stat().st_mode & 0o7777)
    return old


def cache_dir() -> Path:
    """$DEVKIT_CACHE_DIR, else $XDG_CACHE_HOME/devkit, else ~/.cache/devkit."""
    explicit = os.environ.get("DEVKIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "devkit"


def installed(version: str) -> Path:
    """The cached ruff binary of that version, installed from PyPI on first use."""
    target = cache_dir() / "ruff" / version
    binary = target / "bin" / "ruff"
    if binary.is_file():
        return binary
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{version}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    r = proc.run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--target",
        str(tmp),
        f"ruff=={version}",
        timeout=600,
    )
    if r.returncode != 0 or not (tmp / "bin" / "ruff").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        lines = [x for x in (r.err or r.out).strip().splitlines() if x.strip()]
        why = next((x for x in lines if x.startswith("ERROR")), lines[-1] if lines else "")
        raise RuffMissing(f"could not install ruff {version} from PyPI: {why.strip()}")
    try:
        os.rename(tmp, target)
    except OSError:  # another devkit installed it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def bundled() -> list[str]:
    """The ruff installed with devkit: sys.executable's sibling, `python -m ruff`, then PATH."""
    sibling = Path(sys.executable).with_name("ruff.exe" if os.name == "nt" else "ruff")
    if sibling.is_file():
        return [str(sibling)]
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    if found:
        return [found]
    raise RuffMissing("ruff is not installed beside devkit")


def version_of(cmd: list[str]) -> str:
    r = proc.run(*cmd, "--version")
    if r.returncode == 127:
        raise RuffMissing(f"ruff could not be started: {r.err.strip()}")
    words = r.out.split()
    return words[1] if len(words) >= 2 and words[0] == "ruff" else "(unknown version)"


def resolve(root: Path, configured: str | None = None) -> Ruff:
    """The ruff to run for the project at root: $DEVKIT_RUFF, the project's pin, else devkit's own."""
    override = os.environ.get("DEVKIT_RUFF")
    if override:
        return Ruff([override], version_of([override]), "$DEVKIT_RUFF")
    pin = find_pin(root, configured)
    if pin is not None:
        return Ruff([str(installed(pin.version))], pin.version, f"pinned by {pin.source}")
    try:
        cmd = bundled()
    except RuffMissing:  # devkit installed without ruff (its hook environment): its default, cached
        binary = installed(DEFAULT_VERSION)
        return Ruff([str(binary)], DEFAULT_VERSION, "devkit's default; the project pins none")
    return Ruff(cmd, version_of(cmd), "devkit's own; the project pins none")


def rule_names(cmd: list[str], version: str) -> dict[str, str]:
    """Every rule's name by its code, from `ruff rule --all --output-format json`, asked once per
    ruff version and cached: ruff's check output names the rule only since 0.15 or so (before,
    `F401` and no `unused-import`). Empty when this ruff cannot say."""
    known = re.fullmatch(VERSION_RE, version) is not None
    cache = cache_dir() / "ruff-rules" / f"{version}.json"
    if known:
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if isinstance(cached, dict):
                return cached
        except (OSError, ValueError):
            pass
    r = proc.run(*cmd, "rule", "--all", "--output-format", "json")
    try:
        rules = json.loads(r.out) if r.returncode == 0 else []
    except ValueError:
        rules = []
    names = {
        rule["code"]: rule["name"]
        for rule in (rules if isinstance(rules, list) else ())
        if isinstance(rule, dict)
        and isinstance(rule.get("code"), str)
        and isinstance(rule.get("name"), str)
    }
    if names and known:
        _save(cache, json.dumps(names, sort_keys=True))
    return names


def _save(path: Path, text: str) -> None:
    """Write a cache file whole, or not at all: a cache is never required."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_whole(path, text.encode("utf-8"))
    except OSError:
        pass
