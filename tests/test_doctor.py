"""`devkit init --install-hooks` and `devkit doctor` (issue 13): the clone's hooks are active, so a new
contributor's first commit is checked."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo
from tests.test_hooks import git, local_config


def fresh(tmp_path: Path) -> Repo:
    r = Repo.init(tmp_path / "repo", tmp_path / "home")
    r.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{r.env.get('PATH', '')}"
    r.env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    r.commit("chore: start", {"pyproject.toml": PYPROJECT_CONVENTIONAL, "changes/README.md": "x\n"})
    return r


def doctor(r: Repo) -> tuple[int, list[str]]:
    p = r.devkit("doctor")
    assert "Traceback" not in p.stderr
    return p.returncode, p.stdout.splitlines()


def test_doctor_says_what_is_missing_and_init_installs_the_hooks(tmp_path: Path) -> None:
    r = fresh(tmp_path)
    rc, out = doctor(r)
    assert rc == 1
    assert "FAIL  .pre-commit-config.yaml: missing" in out
    for hook in ("pre-commit", "commit-msg", "pre-push"):
        assert f"FAIL  git hook {hook}: no hook" in out
    assert out[-1] == "devkit doctor: 4 problem(s)"

    p = r.devkit("init", "--yes", "--force", "--install-hooks")
    assert p.returncode == 0, p.stdout + p.stderr
    assert (
        "hooks installed: pre-commit, commit-msg, pre-push (`devkit doctor` checks them)"
        in p.stdout
    )
    rc, out = doctor(r)
    assert rc == 0, out
    assert [line.split(":")[0] for line in out if "git hook" in line] == [
        "ok    git hook pre-commit",
        "ok    git hook commit-msg",
        "ok    git hook pre-push",
    ]
    # the installed hooks run: the first commit is checked (offline, the hooks run this devkit)
    r.write(".pre-commit-config.yaml", local_config())
    r.write("a.txt", "a\n")
    git(r, "add", "-A")
    p = git(r, "commit", "-q", "-m", "wip")
    assert p.returncode == 1 and "CM002 [header-format]" in p.stdout + p.stderr


def test_doctor_spots_a_foreign_or_broken_hook(tmp_path: Path) -> None:
    r = fresh(tmp_path)
    hooks = r.path / ".git" / "hooks"
    (hooks / "commit-msg").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "commit-msg").chmod(0o755)
    rc, out = doctor(r)
    assert rc == 1 and "FAIL  git hook commit-msg: another hook, not pre-commit's" in out
    assert "      hint: Run `devkit init --install-hooks`." in out


def test_dry_run_installs_nothing_and_a_hooks_path_is_one_line(tmp_path: Path) -> None:
    r = fresh(tmp_path)
    p = r.devkit("init", "--dry-run", "--install-hooks")
    assert p.returncode == 0 and "dry run: nothing was written" in p.stdout
    assert not (r.path / ".git/hooks/commit-msg").exists()
    # core.hooksPath: git looks elsewhere, doctor follows it, and pre-commit's refusal is one line
    r.git("config", "core.hooksPath", "custom-hooks")
    p = r.devkit("init", "--yes", "--force", "--install-hooks")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.startswith("devkit: error: `pre-commit install` failed: ")
    assert len(p.stderr.splitlines()) == 1
    _, out = doctor(r)
    assert "FAIL  git hook commit-msg: no hook" in out


def test_install_needs_a_pre_commit_config(tmp_path: Path) -> None:
    from devkit import hooks
    from devkit.errors import DevkitError

    r = fresh(tmp_path)
    try:
        hooks.install(r.path)
    except DevkitError as exc:
        assert exc.message.endswith(
            ".pre-commit-config.yaml does not exist: there are no hooks to install"
        )
    else:
        raise AssertionError("installed hooks without a config")
