"""Hooks that coexist (issue 18, item 1): Backend.AI's real `install_git_hooks` (scripts/install-dev.sh)
appends its hooks to whatever is in .git/hooks. With pre-commit's stock script first, Backend.AI's
pants fmt/lint lands after its `exec` and never runs; with Backend.AI's hook first, `pre-commit
install` moves it to `pre-commit.legacy`, which has no `#!` line, and every commit fails. devkit
chains them so both run, in either order, and `devkit doctor` names what cannot run.

Pants cannot run here: `pants` is a stand-in that records its calls (tests/adoption/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.adoption.conftest import (
    PackageIndex,
    StandIn,
    init_keeps_backendai_files,
    install_git_hooks,
)
from tests.gitrepo import Repo

BAI_PRE_COMMIT = ["fmt --changed-since=HEAD", "lint --changed-since=HEAD"]


@pytest.fixture
def env(
    bai_main: Repo, pants: StandIn, package_index: PackageIndex, shared_caches: dict[str, str]
) -> dict[str, str]:
    """The contributor's environment: pants (the stand-in) on PATH, pip offline on the local index."""
    full = {**bai_main.env, **package_index.env(), **shared_caches}
    full["PATH"] = f"{pants.bin_dir}:{full['PATH']}"
    bai_main.env.update(full)  # git and devkit alike
    return full


def run(repo: Repo, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), cwd=repo.path, env=repo.env, capture_output=True, text=True, check=False
    )


def adopt(repo: Repo, *init_args: str) -> None:
    """devkit init without a terminal (it detects the backend.ai preset and keeps Backend.AI's own
    files byte for byte), its files committed."""
    init_keeps_backendai_files(repo, *init_args)
    repo.git("add", "-A")
    repo.git("commit", "-q", "--no-verify", "-m", "chore: adopt devkit")


def plain_pre_commit_install(repo: Repo) -> None:
    """What a contributor types without devkit: pre-commit's own stock hook scripts."""
    p = run(repo, sys.executable, "-m", "pre_commit", "install")
    assert p.returncode == 0, p.stdout + p.stderr


def commit(repo: Repo) -> subprocess.CompletedProcess[str]:
    """A real commit of a Python file on a branch, through every installed hook."""
    repo.git("checkout", "-q", "-B", "fix/chain-hooks")
    repo.write("tools/devkit_probe.py", "X = 1\n")
    repo.git("add", "tools/devkit_probe.py")
    return run(
        repo, "git", "commit", "-q", "-m", "fix(BA-1): chain devkit's hooks with Backend.AI's"
    )


def doctor(repo: Repo) -> tuple[int, list[str]]:
    p = repo.devkit("doctor")
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, [line for line in p.stdout.splitlines() if "git hook" in line]


def assert_both_ran(p: subprocess.CompletedProcess[str], pants: StandIn) -> None:
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    lines = out.splitlines()
    for hook in ("devkit branch name", "devkit lint (ruff)", "devkit commit message"):
        assert any(x.startswith(hook) and x.endswith("Passed") for x in lines), (hook, out)
    assert pants.calls() == BAI_PRE_COMMIT, out  # Backend.AI's hook, once
    assert "All pre-commit checks passed" in out


HOOKS_OK = [
    "ok    git hook pre-commit: pre-commit's",
    "ok    git hook commit-msg: pre-commit's",
    "ok    git hook pre-push: pre-commit's",
]


def test_devkit_first_then_install_dev_appends(
    bai_main: Repo, env: dict[str, str], pants: StandIn
) -> None:
    adopt(bai_main, "--install-hooks")
    p = install_git_hooks(bai_main)
    assert p.returncode == 0, p.stderr
    hook = (bai_main.path / ".git/hooks/pre-commit").read_text()
    # appended, as upstream does
    assert hook.rstrip().endswith('${BASE_PATH}/scripts/pre-commit.sh "$@"')
    assert doctor(bai_main) == (0, HOOKS_OK)
    assert_both_ran(commit(bai_main), pants)
    # install-dev.sh again finds its hook (its magic string) and appends nothing
    assert install_git_hooks(bai_main).returncode == 0
    assert (bai_main.path / ".git/hooks/pre-commit").read_text() == hook


def test_install_dev_first_then_devkit(bai_main: Repo, env: dict[str, str], pants: StandIn) -> None:
    assert install_git_hooks(bai_main).returncode == 0
    assert not (bai_main.path / ".git/hooks/pre-commit").read_text().startswith("#!")
    adopt(bai_main, "--install-hooks")
    legacy = (bai_main.path / ".git/hooks/pre-commit.legacy").read_text()
    assert legacy.startswith("#!/bin/sh\n")  # git ran it with sh; now pre-commit can too
    assert doctor(bai_main) == (0, HOOKS_OK)
    assert_both_ran(commit(bai_main), pants)

    # install-dev.sh again: its hook is in pre-commit.legacy, so it appends a second copy
    assert install_git_hooks(bai_main).returncode == 0
    rc, lines = doctor(bai_main)
    assert rc == 1 and (
        "FAIL  git hook pre-commit: pre-commit.legacy is also appended to the hook: it runs twice"
        in lines
    )
    p = init_keeps_backendai_files(bai_main, "--install-hooks")
    assert "pre-commit.legacy: removed, it is the code appended to pre-commit" in p.stdout
    assert doctor(bai_main) == (0, HOOKS_OK)
    pants.log.unlink()
    bai_main.git("reset", "-q", "--hard", "HEAD~1")
    assert_both_ran(commit(bai_main), pants)


def test_doctor_names_what_plain_pre_commit_install_breaks(
    bai_main: Repo, env: dict[str, str], pants: StandIn, tmp_path: Path
) -> None:
    """What the issue measured: doctor said "all good" to both."""
    adopt(bai_main)
    # (a) pre-commit's stock hook first: Backend.AI's hook lands after its `exec`
    plain_pre_commit_install(bai_main)
    assert install_git_hooks(bai_main).returncode == 0
    rc, lines = doctor(bai_main)
    assert rc == 1
    assert lines[0] == (
        "FAIL  git hook pre-commit: code appended after pre-commit's `exec` never runs "
        '(`BASE_PATH=$(cd "$(dirname "$0")"/../.. && pwd)`)'
    )
    assert lines[2].startswith("FAIL  git hook pre-push: code appended after pre-commit's `exec`")
    assert commit(bai_main).returncode == 0 and pants.calls() == []  # pants never ran

    # (b) Backend.AI's hook first: pre-commit moves it to pre-commit.legacy, which cannot run
    for name in ("pre-commit", "pre-push"):
        (bai_main.path / ".git/hooks" / name).unlink()
    bai_main.git("reset", "-q", "--hard", "HEAD~1")
    assert install_git_hooks(bai_main).returncode == 0
    plain_pre_commit_install(bai_main)
    rc, lines = doctor(bai_main)
    assert rc == 1
    assert lines[0] == (
        "FAIL  git hook pre-commit: pre-commit.legacy has no #! line: "
        "every run fails with `OSError: [Errno 8] Exec format error`"
    )
    p = commit(bai_main)
    assert p.returncode == 1 and "Exec format error" in p.stdout + p.stderr
    # the fix doctor names
    adopt(bai_main, "--install-hooks")
    assert doctor(bai_main) == (0, HOOKS_OK)
