"""The sdist and wheel as PyPI gets them (issue 13): built, `twine check`ed, and the wheel installed in a
clean venv, where `devkit` runs with its templates. The install takes no dependencies: `--version`
and the hook paths need only the standard library."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = "monorepo_devkit"


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False)
    assert p.returncode == 0, f"{cmd}: {p.stdout}{p.stderr}"
    return p


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: hatchling comes from the test extras, so the build needs no index
    run(
        sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", out, ROOT
    )
    return out


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    files = sorted(p.name for p in dist.iterdir())
    assert files == [f"{NAME}-0.1.0-py3-none-any.whl", f"{NAME}-0.1.0.tar.gz"]
    p = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert p.stdout.count("PASSED") == 2


def test_both_ship_the_templates(dist: Path) -> None:
    wheel = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    for name in ("ci/github-actions.yml", "ci/news-assign.yml", "pre-commit/pre-commit-config.yaml",
                 "towncrier/README.md", "stacks/backend.ai/stack.toml"):  # fmt: skip
        assert f"devkit/templates/{name}" in wheel, name
    # the command is a script of its own (pip's entry-point wrapper imports `re`)
    script = zipfile.ZipFile(next(dist.glob("*.whl"))).read(f"{NAME}-0.1.0.data/scripts/devkit")
    assert script.startswith(b"#!python\n") and b"from devkit.cli import main" in script
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        assert f"{NAME}-0.1.0/templates/ci/news-assign.yml" in sdist.getnames()


def test_both_carry_the_license_and_honest_metadata(dist: Path) -> None:
    """Issue 18: LICENSE in both, classifiers, the provisioning libraries only in their extra, and no
    project URL (devkit's home is not decided: none is better than an invented one)."""
    wheel = zipfile.ZipFile(next(dist.glob("*.whl")))
    assert wheel.read(f"{NAME}-0.1.0.dist-info/licenses/LICENSE").startswith(b"MIT License\n")
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        assert f"{NAME}-0.1.0/LICENSE" in sdist.getnames()
    meta = wheel.read(f"{NAME}-0.1.0.dist-info/METADATA").decode().split("\n\n", 1)[0]
    fields = [line.split(": ", 1) for line in meta.splitlines() if ": " in line]
    assert ["License-Expression", "MIT"] in fields and ["License-File", "LICENSE"] in fields
    classifiers = [v for k, v in fields if k == "Classifier"]
    assert "Programming Language :: Python :: 3 :: Only" in classifiers and len(classifiers) >= 5
    assert not [k for k, _ in fields if k in ("Project-URL", "Home-page")]
    core = sorted(
        v.split("<")[0].split(">")[0] for k, v in fields if k == "Requires-Dist" and ";" not in v
    )
    # what the checks and hooks import, and `devkit completion`'s generator
    assert core == ["jinja2", "shtab", "tomlkit", "towncrier"]
    provision = [v for k, v in fields if k == "Requires-Dist" and "extra == 'provision'" in v]
    assert sorted(v.split("<")[0].split(">")[0] for v in provision) == ["fabric", "rich"]


def test_the_wheel_runs_from_a_clean_venv(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", next(dist.glob("*.whl")))
    assert run(venv / "bin" / "devkit", "--version").stdout == "devkit 0.1.0\n"
    code = "from devkit.resources import templates_dir; print(templates_dir())"
    templates = run(py, "-c", code, cwd=tmp_path)  # not from the checkout: cwd is on sys.path
    assert (
        Path(templates.stdout.strip())
        == venv
        / "lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "site-packages"
        / "devkit"
        / "templates"
    )
    # the hook paths, with nothing but the standard library installed
    repo = tmp_path / "repo"
    run("git", "init", "-q", repo)
    (repo / "pyproject.toml").write_text('[tool.devkit]\npreset = "conventional"\n')
    assert run(
        venv / "bin" / "devkit", "check", "commit", "-m", "feat: x", cwd=repo
    ).stdout.startswith("devkit: all good")
    assert run(venv / "bin" / "devkit", "check", "branch", "feat/x", cwd=repo).stdout.startswith(
        "devkit: all good"
    )
    # no ruff beside devkit (ruff is not a dependency): lint runs devkit's default version from
    # the cache, where a first run installs it (here: put there already, so no download)
    from devkit import ruff

    cache = tmp_path / "cache"
    (cache / "ruff" / ruff.DEFAULT_VERSION / "bin").mkdir(parents=True)
    (cache / "ruff" / ruff.DEFAULT_VERSION / "bin" / "ruff").symlink_to(Path(ruff.bundled()[0]))
    (repo / "x.py").write_text("import os\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEVKIT_CACHE_DIR": str(cache)}
    p = subprocess.run(
        [venv / "bin" / "devkit", "lint", "x.py"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "x.py:1:8: error F401" in p.stdout
    assert f"ruff {ruff.DEFAULT_VERSION} (devkit's default; the project pins none)" in p.stdout
