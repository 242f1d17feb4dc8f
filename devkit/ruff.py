"""Which ruff lints a project: the version the project pins, installed once into a cache from PyPI
(as pre-commit installs its hook environments), else the ruff installed with devkit.

The pin is looked up in order: `[tool.devkit.lint] ruff`, the `rev` of astral-sh/ruff-pre-commit in
`.pre-commit-config.yaml`, `pants.toml`'s `[ruff] version` (Backend.AI's gate).
"""

from __future__ import annotations

import importlib.util
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
    """The project's ruff version, or None when it pins none."""
    if configured:
        return Pin(configured, "[tool.devkit.lint] ruff")
    pre_commit = root / ".pre-commit-config.yaml"
    if pre_commit.is_file():
        lines = pre_commit.read_text(encoding="utf-8", errors="replace").splitlines()
        for i, line in enumerate(lines):
            if _PRE_COMMIT_REPO.match(line):
                for nxt in lines[i + 1 : i + 4]:
                    m = _REV.match(nxt)
                    if m:
                        return Pin(m.group(1), "the ruff-pre-commit rev in .pre-commit-config.yaml")
    pants = root / "pants.toml"
    if pants.is_file():
        try:
            version = files.read_toml(pants).get("ruff", {}).get("version")
        except (ConfigError, AttributeError):
            version = None
        if isinstance(version, str) and re.fullmatch(VERSION_RE, version):
            return Pin(version, "[ruff] version in pants.toml")
    return None


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
    raise RuffMissing("ruff is not installed (it is a dependency of devkit: reinstall devkit)")


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
    cmd = bundled()
    return Ruff(cmd, version_of(cmd), "devkit's own; the project pins none")
