"""`devkit init --install-hooks` and `devkit doctor` (issue 13): the clone's hooks are active, so a new
contributor's first commit is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from devkit.hooks import NEXT_STEP
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
    assert f"      hint: Next: {NEXT_STEP}." in out


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


def test_doctor_names_each_hook_that_cannot_run_and_init_chains_them(tmp_path: Path) -> None:
    """Issue 18: hooks other installers put beside pre-commit's, in every combination that breaks."""
    r = fresh(tmp_path)
    assert r.devkit("init", "--yes", "--force", "--install-hooks").returncode == 0
    hooks = r.path / ".git" / "hooks"
    # code appended after the stock script's `exec` (pre-commit's own install, then another installer)
    p = r.devkit("init", "--install-hooks", "--yes")  # nothing to write; reinstalls the hooks
    assert p.returncode == 0, p.stderr
    stock = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install", "--hook-type", "pre-push"],
        cwd=r.path, env=r.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert stock.returncode == 0, stock.stderr
    with (hooks / "pre-push").open("a") as f:
        f.write("\n# another installer's hook\necho pushed >> pushed.log\n")
    # a hook pointing at a pre-commit that is gone (its venv deleted), none on PATH
    msg_hook = hooks / "commit-msg"
    text = msg_hook.read_text()
    msg_hook.write_text(
        re.sub(r"(?m)^INSTALL_PYTHON=.*$", "INSTALL_PYTHON=/gone/venv/bin/python", text)
    )
    # legacy hooks that cannot run: no #! line; not executable; an interpreter that is not there
    for name, body, mode in (
        ("pre-commit.legacy", "echo legacy\n", 0o755),
        ("commit-msg.legacy", "#!/bin/sh\necho legacy\n", 0o644),
        ("pre-push.legacy", "#!/usr/bin/env no-such-shell\necho legacy\n", 0o755),
    ):
        (hooks / name).write_text(body)
        (hooks / name).chmod(mode)
    env = {"PATH": "/usr/bin:/bin"}  # no pre-commit on PATH
    p = r.devkit("doctor", env=env)
    out = [line for line in p.stdout.splitlines() if "git hook" in line or "hint" in line]
    assert p.returncode == 1
    assert out == [
        "FAIL  git hook pre-commit: pre-commit.legacy has no #! line: every run fails with "
        "`OSError: [Errno 8] Exec format error`",
        "      hint: Run `devkit init --install-hooks` (it runs the hook with sh, as git did).",
        "FAIL  git hook commit-msg: it runs pre-commit from `/gone/venv/bin/python`, which is gone "
        "(and no pre-commit is on PATH)",
        "      hint: Install pre-commit (`pip install pre-commit`), then run `devkit init --install-hooks`.",
        "FAIL  git hook commit-msg: commit-msg.legacy is not executable: pre-commit skips it, "
        "so it never runs",
        f"      hint: `chmod +x {hooks / 'commit-msg.legacy'}` to run it, or delete it.",
        "FAIL  git hook pre-push: code appended after pre-commit's `exec` never runs "
        "(`echo pushed >> pushed.log`)",
        "      hint: Run `devkit init --install-hooks` (it chains them so both run).",
        "FAIL  git hook pre-push: pre-push.legacy needs `no-such-shell`, which is not installed: "
        "the hook fails",
        f"      hint: Install it, or edit {hooks / 'pre-push.legacy'}.",
    ]
    p = r.devkit("init", "--install-hooks", "--yes")
    assert p.returncode == 0, p.stderr
    assert "pre-push: the code appended to it runs after pre-commit's checks" in p.stdout
    assert "pre-commit.legacy: runs with sh, as git ran it (it has no #! line)" in p.stdout
    assert (hooks / "pre-commit.legacy").read_text().startswith("#!/bin/sh\n")
    assert "echo pushed >> pushed.log" in (hooks / "pre-push").read_text()
    _, out = doctor(r)
    assert [line for line in out if line.startswith("FAIL  git hook")] == [
        "FAIL  git hook commit-msg: commit-msg.legacy is not executable: pre-commit skips it, "
        "so it never runs",  # the project's own choice: devkit leaves it
        "FAIL  git hook pre-push: pre-push.legacy needs `no-such-shell`, which is not installed: "
        "the hook fails",
    ]


def test_doctor_fails_a_config_whose_hooks_cannot_install(tmp_path: Path) -> None:
    """Issue 18: init wrote a repository that does not exist, and doctor said ok."""
    r = fresh(tmp_path)
    r.write(
        ".pre-commit-config.yaml",
        "repos:\n  - repo: https://github.com/devkit-dev/devkit\n    rev: v0.1.0\n"
        "    hooks: [{id: devkit-branch}, {id: devkit-commit-msg}, {id: devkit-news}]\n",
    )
    rc, out = doctor(r)
    assert rc == 1
    assert (
        "FAIL  .pre-commit-config.yaml: devkit's hooks come from https://github.com/devkit-dev/devkit, "
        "which does not exist: they cannot install"
    ) in out
    assert r.devkit("init", "--yes", "--force").returncode == 0
    _, out = doctor(r)
    assert (
        "ok    .pre-commit-config.yaml: devkit's hooks: monorepo-devkit 0.1.0 from the package index"
        in out
    )
