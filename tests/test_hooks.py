"""The published hooks, run by real pre-commit in real repositories, offline.

pre-commit installs `language: python` hooks from an index; offline it cannot, so the tests run the
same entries as `language: system` hooks calling this interpreter's devkit (libraries.md 2.6), and a
test keeps the two in step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which(
    "pre-commit"
)
pytestmark = pytest.mark.skipif(
    PRE_COMMIT is None, reason="pre-commit is not installed (pip install -e '.[test]')"
)


def manifest() -> list[dict]:
    return yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def local_config(args: dict[str, list[str]] | None = None) -> str:
    hooks = []
    for hook in manifest():
        local = {
            k: v
            for k, v in hook.items()
            if k not in ("language", "minimum_pre_commit_version", "description")
        }
        local["language"] = "system"
        if args and hook["id"] in args:
            local["args"] = args[hook["id"]]
        hooks.append(local)
    return yaml.safe_dump(
        {
            "default_install_hook_types": ["pre-commit", "commit-msg", "pre-push"],
            "repos": [{"repo": "local", "hooks": hooks}],
        },
        sort_keys=False,
    )


@pytest.fixture
def hooked(tmp_path: Path) -> Repo:
    r = Repo.init(tmp_path / "repo", tmp_path / "home")
    r.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{r.env.get('PATH', '')}"
    r.env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    r.env["PIP_NO_INDEX"] = "1"  # offline: nothing may be downloaded
    r.write(".pre-commit-config.yaml", local_config({"devkit-news": ["--base", "origin/main"]}))
    r.write("pyproject.toml", PYPROJECT_CONVENTIONAL)
    r.write("changes/README.md", "Fragments go here.\n")
    r.git("add", "-A")
    r.git("commit", "-q", "--no-verify", "-m", "chore: initial commit")
    p = subprocess.run(
        [PRE_COMMIT, "install"], cwd=r.path, env=r.env, capture_output=True, text=True, check=False
    )
    assert p.returncode == 0, p.stderr
    return r


def git(r: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=r.path, env=r.env, capture_output=True, text=True, check=False
    )


def test_manifest_and_config_are_valid() -> None:
    for cmd, f in (
        ("validate-manifest", ".pre-commit-hooks.yaml"),
        ("validate-config", ".pre-commit-config.yaml"),
    ):
        p = subprocess.run(
            [PRE_COMMIT, cmd, f], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert p.returncode == 0, p.stdout + p.stderr


def test_manifest_hooks_are_what_the_issue_asks_for() -> None:
    hooks = {h["id"]: h for h in manifest()}
    assert hooks["devkit-branch"]["stages"] == ["pre-commit", "pre-push"]
    assert (
        hooks["devkit-branch"]["always_run"] is True
        and hooks["devkit-branch"]["pass_filenames"] is False
    )
    assert hooks["devkit-commit-msg"]["stages"] == ["commit-msg"]
    assert hooks["devkit-news"]["stages"] == ["pre-push"]
    own = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    own = {h["id"]: h for h in own}
    for hid, hook in hooks.items():  # this repository dogfoods the same hooks
        assert own[hid]["entry"].endswith(hook["entry"]) and own[hid]["stages"] == hook["stages"]


def test_commit_msg_hook_rejects_and_accepts(hooked: Repo) -> None:
    hooked.write("feat/x.txt", "x\n")
    git(hooked, "checkout", "-q", "-b", "feat/search")
    git(hooked, "add", "-A")
    p = git(hooked, "commit", "-q", "-m", "wip")
    assert p.returncode == 1
    out = p.stdout + p.stderr
    assert "devkit commit message" in out and "Failed" in out
    assert "CM002 [header-format]" in out
    assert git(hooked, "log", "-1", "--format=%s").stdout.strip() == "chore: initial commit"
    p = git(hooked, "commit", "-q", "-m", "feat: add search\n\nWith a body.")
    assert p.returncode == 0, p.stdout + p.stderr
    assert git(hooked, "log", "-1", "--format=%s").stdout.strip() == "feat: add search"


def test_branch_hook_rejects_a_bad_branch(hooked: Repo) -> None:
    git(hooked, "checkout", "-q", "-b", "Bad_Branch")
    hooked.write("a.txt", "a\n")
    git(hooked, "add", "-A")
    p = git(hooked, "commit", "-q", "-m", "feat: add a")
    assert p.returncode == 1
    assert "BR001 [branch-pattern] branch `Bad_Branch`" in p.stdout + p.stderr


def test_pre_push_news_hook(hooked: Repo, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], env=hooked.env, check=True)
    git(hooked, "remote", "add", "origin", str(remote))
    assert git(hooked, "push", "-q", "--no-verify", "origin", "main").returncode == 0
    git(hooked, "fetch", "-q", "origin")
    git(hooked, "checkout", "-q", "-b", "fix/typo")
    hooked.write("a.txt", "a\n")
    git(hooked, "add", "-A")
    assert git(hooked, "commit", "-q", "-m", "fix: correct a typo").returncode == 0
    # no pull request yet (no `gh` here): what its check will want only warns (issue 18)
    p = git(hooked, "push", "-q", "origin", "fix/typo")
    assert p.returncode == 0, p.stdout + p.stderr
    # with one (a STAND-IN `gh` that prints what `gh pr view --json` does), the push waits for it
    stand_in = tmp_path / "stand-in-bin"
    stand_in.mkdir()
    answer = '{"number": 5, "title": "fix: correct a typo", "labels": [], "state": "OPEN"}'
    (stand_in / "gh").write_text(f"#!/bin/sh\necho '{answer}'\n")
    (stand_in / "gh").chmod(0o755)
    hooked.env["PATH"] = f"{stand_in}:{hooked.env['PATH']}"
    hooked.write("b.txt", "b\n")
    git(hooked, "add", "-A")
    assert git(hooked, "commit", "-q", "-m", "fix: correct another").returncode == 0
    p = git(hooked, "push", "-q", "origin", "fix/typo")
    assert p.returncode != 0
    assert "NF011 [fragment-missing]" in p.stdout + p.stderr
    hooked.write("changes/5.fix.md", "Correct a typo\n")
    git(hooked, "add", "-A")
    assert git(hooked, "commit", "-q", "-m", "docs: add the news fragment").returncode == 0
    p = git(hooked, "push", "-q", "origin", "fix/typo")
    assert p.returncode == 0, p.stdout + p.stderr
