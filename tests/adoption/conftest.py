"""The adoption suite (issue 18): devkit adopted into Backend.AI's real tree (the shared bundles) by
its real scripts, offline.

Each bundle is cloned once per session (bare: its objects only); a test works in a local clone of
that (`git clone --shared`, a sparse checkout of the top-level files and the folders devkit and
Backend.AI's hooks use: the full tree takes ~10 s to check out). A missing bundle skips, which fails
under DEVKIT_TEST_STRICT=1 (tests/conftest.py).

The hooks devkit generates install monorepo-devkit from a package index: the session builds one from
devkit's own wheel (a PEP 503 simple index in a temp dir) with a wheelhouse of its dependencies, and
every pip in these tests sees only those two (no pip config, a proxy that goes nowhere).
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.backendai import bundle
from tests.gitrepo import Repo, clean_env

ROOT = Path(__file__).resolve().parents[2]
BRANCHES = {"main": "backend.ai-main.bundle", "23.09": "backend.ai-23.09.bundle"}
SPARSE = ("scripts", "changes", ".github", "tools")
# what main's pants.toml pins: the wheelhouse holds it (and 23.09's), so devkit installs it offline
MAIN_RUFF = "0.14.0"
RUFF_2309 = "0.1.15"  # 23.09's tools/ruff.lock
# an address nothing listens on: a pip or git that tried the network would fail at once
NOWHERE = "http://127.0.0.1:9"


class PackageIndex(NamedTuple):
    url: str  # file:// URL of the simple index (monorepo-devkit only)
    wheelhouse: Path  # devkit's dependencies, setuptools, ruff: pip's find-links
    wheel: Path  # devkit's own wheel, as the index serves it

    def env(self) -> dict[str, str]:
        """pip sees this index and this wheelhouse, and nothing else."""
        return {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": self.url,
            "PIP_FIND_LINKS": str(self.wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_RETRIES": "0",
            "HTTP_PROXY": NOWHERE,
            "HTTPS_PROXY": NOWHERE,
            "http_proxy": NOWHERE,
            "https_proxy": NOWHERE,
        }


def _run(*cmd: str | Path, cwd: Path | None = None) -> None:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False)
    assert p.returncode == 0, f"{cmd}: {p.stdout}{p.stderr}"


def _shared(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A directory built once per session, shared by pytest-xdist's workers (under a lock)."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / ".done").is_file():
            path.mkdir(exist_ok=True)
            build(path)
            (path / ".done").touch()
    return path


def _build_index(dest: Path) -> None:
    dist, wheelhouse, simple = dest / "dist", dest / "wheelhouse", dest / "simple"
    # --no-isolation: hatchling comes from the test extras (as in tests/test_dist.py)
    _run(sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", dist, ROOT)
    (wheel,) = dist.glob("*.whl")
    # the dependencies from this machine's usual sources, once: the tests themselves are offline
    download = (sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:")
    _run(*download, "--dest", wheelhouse, wheel, "setuptools>=40.8.0", f"ruff=={MAIN_RUFF}")
    _run(*download, "--no-deps", "--dest", wheelhouse, f"ruff=={RUFF_2309}")
    (wheelhouse / wheel.name).unlink(missing_ok=True)  # devkit itself only from the index
    project = simple / "monorepo-devkit"
    project.mkdir(parents=True)
    (project / wheel.name).write_bytes(wheel.read_bytes())
    (project / "index.html").write_text(
        f'<!DOCTYPE html>\n<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>\n'
    )


@pytest.fixture(scope="session")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> PackageIndex:
    root = _shared(tmp_path_factory, "package-index", _build_index)
    (wheel,) = (root / "simple" / "monorepo-devkit").glob("*.whl")
    return PackageIndex(f"file://{root / 'simple'}", root / "wheelhouse", wheel)


@pytest.fixture(scope="session")
def shared_caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """pre-commit's store and devkit's ruff cache, shared by the session (both lock themselves)."""
    root = _shared(tmp_path_factory, "caches", lambda p: None)
    return {
        "PRE_COMMIT_HOME": str(root / "pre-commit-home"),
        "DEVKIT_CACHE_DIR": str(root / "devkit-cache"),
    }


def _bare(factory: pytest.TempPathFactory, branch: str) -> Path:
    src = bundle(BRANCHES[branch])  # skips when missing (a failure under DEVKIT_TEST_STRICT=1)
    dest = factory.mktemp(f"bundle-{branch}") / "backend.ai.git"
    _run("git", "clone", "-q", "--bare", src, dest)
    return dest


@pytest.fixture(scope="session")
def bai_main_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bare(tmp_path_factory, "main")


@pytest.fixture(scope="session")
def bai_2309_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bare(tmp_path_factory, "23.09")


def clone(
    source: Path, dest: Path, home: Path, branch: str, sparse: tuple[str, ...] = SPARSE
) -> Repo:
    """A contributor's clone of Backend.AI: origin is the bundle's copy, devkit's CLI on PATH."""
    home.mkdir(parents=True, exist_ok=True)
    env = clean_env(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    git = {"env": env, "capture_output": True, "check": True}
    subprocess.run(
        ["git", "clone", "-q", "--shared", "--no-checkout", str(source), str(dest)], **git
    )
    subprocess.run(["git", "-C", str(dest), "sparse-checkout", "set", *sparse], **git)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", branch], **git)
    repo = Repo(dest, env)
    repo.git("config", "commit.gpgsign", "false")
    return repo


@pytest.fixture
def bai_main(bai_main_source: Path, tmp_path: Path) -> Repo:
    return clone(bai_main_source, tmp_path / "backend.ai", tmp_path / "home", "main")


@pytest.fixture
def bai_2309(bai_2309_source: Path, tmp_path: Path) -> Repo:
    return clone(bai_2309_source, tmp_path / "backend.ai", tmp_path / "home", "23.09")


class StandIn(NamedTuple):
    bin_dir: Path
    log: Path

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.is_file() else []


@pytest.fixture
def pants(tmp_path: Path) -> Iterator[StandIn]:
    """A STAND-IN for Pants, which cannot be downloaded here: a `pants` on PATH that records its
    arguments (one line per call) and succeeds. Backend.AI's hooks call it; the tests read the log."""
    bin_dir = tmp_path / "stand-in-bin"
    bin_dir.mkdir()
    log = tmp_path / "pants-calls.log"
    script = bin_dir / "pants"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(log))}\n')
    script.chmod(0o755)
    yield StandIn(bin_dir, log)


def install_git_hooks(repo: Repo) -> subprocess.CompletedProcess[str]:
    """Backend.AI's own `install_git_hooks`: that one function, taken from the clone's
    scripts/install-dev.sh as it is, defined and called in bash from the repository root."""
    text = (repo.path / "scripts" / "install-dev.sh").read_text(encoding="utf-8")
    m = re.search(r"^install_git_hooks\(\) \{\n.*?^\}\n", text, re.MULTILINE | re.DOTALL)
    assert m, "install_git_hooks() is not in scripts/install-dev.sh"
    return subprocess.run(
        ["bash", "-c", m.group(0) + "install_git_hooks\n"],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
        text=True,
        check=False,
    )


# Backend.AI's own files that devkit init plans too and must keep byte for byte (issue 18, item 4)
BACKENDAI_OWN = ("changes/README.md", "changes/template.md")


def init_keeps_backendai_files(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """`devkit init ARGS` as install scripts run it: no --preset, no --force, no terminal (stdin
    is /dev/null). It must succeed and leave Backend.AI's own files byte for byte as committed."""
    before = {p: repo.git("show", f"HEAD:{p}").encode() for p in BACKENDAI_OWN}
    p = subprocess.run(
        [sys.executable, "-m", "devkit", "init", *args],
        cwd=repo.path,
        env=repo.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    for path, data in before.items():
        assert (repo.path / path).read_bytes() == data, path
    return p
