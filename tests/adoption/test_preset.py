"""The backend.ai preset in Backend.AI's real tree (issue 18, items 2, 4 and 7), on the bundles:
`devkit init` as install scripts run it (no terminal) keeps Backend.AI's own files and finds the
preset; a backport pull request keeps its original fragment number; a placeholder is what
timeline-check.yml numbers (a warning that says so) unless the pull request comes from a fork (an
error with the rename); the commit-msg hook and `devkit ci` agree on `wip` (and the hook's warning
reaches the terminal); the pre-push check waits for the pull request; `news preview` renders a
branch's fragment. Pull requests are GitHub's `pull_request` event files, written as GitHub does."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.hooks import NEXT_STEP
from tests.adoption.conftest import PackageIndex, init_keeps_backendai_files
from tests.gitrepo import Repo

REPO = "lablup/backend.ai"
WORKFLOW = "Backend.AI's timeline-check.yml (its assign-pr-number job)"


def adopt(repo: Repo, base: str) -> subprocess.CompletedProcess[str]:
    """devkit adopted (init without a terminal) and committed on `base`, which origin then has too
    (as once the adoption is merged)."""
    p = init_keeps_backendai_files(repo)
    repo.git("add", "-A")
    repo.git("commit", "-q", "--no-verify", "-m", "chore: adopt devkit")
    repo.git("update-ref", f"refs/remotes/origin/{base}", "HEAD")
    return p


def branch(repo: Repo, name: str, subject: str, files: dict[str, str]) -> None:
    repo.git("checkout", "-q", "-b", name)
    repo.commit(subject, files)


def event(
    tmp_path: Path,
    repo: Repo,
    number: int,
    title: str,
    base: str,
    fork: bool = False,
    labels: tuple[str, ...] = (),
) -> dict[str, str]:
    """The environment of a `pull_request` run: GitHub's variables and its event file."""
    head_ref = repo.git("symbolic-ref", "--short", "HEAD").strip()
    head_repo = "someone/backend.ai" if fork else REPO
    pull = {
        "number": number,
        "title": title,
        "state": "open",
        "draft": False,
        "labels": [{"name": n} for n in labels],
        "base": {"ref": base, "sha": repo.git("rev-parse", f"origin/{base}").strip(),
                 "repo": {"full_name": REPO}},
        "head": {"ref": head_ref, "sha": repo.head(), "repo": {"full_name": head_repo}},
    }  # fmt: skip
    path = tmp_path / "event.json"
    payload = {"action": "opened", "number": number, "pull_request": pull}
    path.write_text(json.dumps({**payload, "repository": {"full_name": REPO}}))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_BASE_REF": base,
        "GITHUB_HEAD_REF": head_ref,
        "GITHUB_REPOSITORY": REPO,
    }


def ci(repo: Repo, env: dict[str, str]) -> tuple[int, dict[str, dict]]:
    p = repo.devkit("ci", "--format", "json", env=env)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, {c["check"]: c for c in json.loads(p.stdout)["checks"]}


def found(check: dict) -> list[tuple[str, str, str | None]]:
    return [(v["code"], v["severity"], v["hint"]) for v in check["violations"]]


@pytest.mark.parametrize("line", ["main", "23.09"])
def test_init_without_a_terminal_keeps_backendai_files_and_finds_the_preset(
    line: str, request: pytest.FixtureRequest
) -> None:
    repo: Repo = request.getfixturevalue("bai_main" if line == "main" else "bai_2309")
    p = init_keeps_backendai_files(repo)
    own = "exists and was not written by devkit: the project's own; --force replaces it"
    signs = "pants.toml, changes/template.md, .github/workflows/timeline-check.yml"
    assert p.stdout.splitlines()[:6] == [
        f"devkit init (backend.ai preset, detected: {signs}) in {repo.path}:",
        "  update     pyproject.toml  (adds [tool.devkit])",
        f"  keep       changes/README.md  ({own})",
        f"  keep       changes/template.md  ({own})",
        "  create     .pre-commit-config.yaml",
        "  create     .github/workflows/devkit.yml",
    ]
    replaces = next(x for x in p.stdout.splitlines() if x.startswith("replaces: "))
    assert "timeline-check.yml (the news-fragment check)" in replaces
    assert ("pr-prefix.yml (the pull request title check)" in replaces) == (line == "main")
    assert "Keep timeline-check.yml's assign-pr-number job" in replaces
    assert p.stdout.splitlines()[-1] == f"next: {NEXT_STEP}"
    doctor = repo.devkit("doctor").stdout
    assert "ok    config: " in doctor and ", preset backend.ai" in doctor
    assert f"      hint: Next: {NEXT_STEP}." in doctor  # the hooks: the same next step


def test_a_backport_keeps_the_original_fragment_number(bai_2309: Repo, tmp_path: Path) -> None:
    """backport.yml's pull request: `backport/<N>-to-<X.Y>` into the release branch, titled with
    the original's `(#N)`, the fragment `changes/<N>.fix.md` (it was NF008, rename to the
    backport's own number: release notes would lose the link to the original change)."""
    adopt(bai_2309, "23.09")
    title = "fix(BA-1): keep the original fragment number (#1234)"
    fragment = {"changes/1234.fix.md": "Keep a backport's fragment number\n"}
    branch(bai_2309, "backport/1234-to-23.09", title, fragment)
    rc, checks = ci(bai_2309, event(tmp_path, bai_2309, 1300, title, "23.09", labels=("backport",)))
    assert rc == 0, checks
    assert found(checks["news"]) == []
    assert checks["news"]["notes"][-1] == (
        "a backport of #1234: `changes/1234.fix.md` keeps its number"
    )
    assert [c["ok"] for c in checks.values()] == [True] * len(checks)
    # the same fragment in a pull request that is no backport: the number must be its own
    bai_2309.git("branch", "-q", "-m", "fix/BA-1-elsewhere")
    rc, checks = ci(bai_2309, event(tmp_path, bai_2309, 1300, "fix(BA-1): x", "23.09"))
    assert rc == 1 and found(checks["news"]) == [
        ("NF008", "error", "Rename it: `git mv changes/1234.fix.md changes/1300.fix.md`.")
    ]


def test_a_placeholder_is_timeline_checks_to_number_unless_from_a_fork(
    bai_main: Repo, tmp_path: Path
) -> None:
    adopt(bai_main, "main")
    files = {"changes/fix.md": "Number the placeholders\n", "changes/42.doc.md": "Say so\n"}
    branch(bai_main, "fix/BA-2-placeholder", "fix(BA-2): number placeholders", files)
    title = "fix(BA-2): number placeholders"
    rc, checks = ci(bai_main, event(tmp_path, bai_main, 13900, title, "main"))
    assert rc == 0, checks  # a warning that says who numbers it, not an error
    assert found(checks["news"]) == [
        ("NF003", "warning",
         f"{WORKFLOW} gives it the pull request's number when the pull request is pushed."),
        ("NF008", "warning",  # an issue's number: the same workflow renames it on main
         f"{WORKFLOW} renames it to `changes/13900.doc.md` when the pull request is pushed."),
    ]  # fmt: skip
    rc, checks = ci(bai_main, event(tmp_path, bai_main, 13900, title, "main", fork=True))
    assert rc == 1
    assert found(checks["news"]) == [
        ("NF008", "error", "Rename it: `git mv changes/42.doc.md changes/13900.doc.md`."),
        ("NF008", "error",
         "Rename it: `git mv changes/fix.md changes/13900.fix.md` (or `devkit news assign 13900`)."),
    ]  # fmt: skip
    assert checks["news"]["violations"][1]["message"] == (
        "`changes/fix.md` has no number, and nothing will give it one: the pull request comes "
        f"from a fork, and {WORKFLOW} numbers only this repository's branches"
    )


def on_terminal(repo: Repo, *cmd: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run cmd with a pseudo-terminal as its controlling terminal (what /dev/tty opens) and pipes as
    its standard streams, the way pre-commit runs a hook; returns what reached the terminal."""
    main, child = pty.openpty()
    name = os.ttyname(child)

    def take_the_terminal() -> None:  # in the child, a session leader: the first tty it opens
        os.close(os.open(name, os.O_RDWR))

    try:
        p = subprocess.run(
            list(cmd), cwd=repo.path, env=repo.env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, check=False, start_new_session=True,
            preexec_fn=take_the_terminal,
        )  # fmt: skip
        os.set_blocking(main, False)
        seen = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(child)
        os.close(main)
    return p, seen.decode("utf-8", "replace").replace("\r\n", "\n")


def test_the_commit_msg_hook_and_ci_agree_on_wip(
    bai_main: Repo, package_index: PackageIndex, shared_caches: dict[str, str], tmp_path: Path
) -> None:
    bai_main.env.update({**package_index.env(), **shared_caches})
    init_keeps_backendai_files(bai_main, "--install-hooks")
    bai_main.git("add", "-A")
    bai_main.git("commit", "-q", "--no-verify", "-m", "chore: adopt devkit")
    bai_main.git("update-ref", "refs/remotes/origin/main", "HEAD")
    bai_main.git("checkout", "-q", "-b", "fix/BA-3-agree")
    bai_main.write("changes/fix.md", "Agree on wip\n")
    bai_main.git("add", "-A")
    bai_main.env["NO_COLOR"] = "1"  # the terminal gets colours otherwise
    p, terminal = on_terminal(bai_main, "git", "commit", "-q", "-m", "wip")
    assert p.returncode == 0, p.stdout + p.stderr  # the hook lets it through, as CI does
    hook = [x for x in terminal.splitlines() if " CM002 " in x]
    assert hook == [
        ".git/COMMIT_EDITMSG:1:4: warning CM002 [header-format] expected `:` at column 4, found "
        "`end of line`"
    ]
    note = next(x for x in terminal.splitlines() if x.startswith("commit: note: "))
    assert "Backend.AI squash-merges" in note

    rc, checks = ci(bai_main, event(tmp_path, bai_main, 13902, "fix(BA-3): agree on wip", "main"))
    assert rc == 0, checks
    (v,) = checks["commit"]["violations"]
    assert (v["code"], v["severity"], v["message"]) == (
        "CM002", "warning", "expected `:` at column 4, found `end of line`"
    )  # fmt: skip
    assert f"commit: note: {checks['commit']['notes'][0]}" == note
    # the title is what lands: there `wip` is an error, as pr-prefix.yml says
    rc, checks = ci(bai_main, event(tmp_path, bai_main, 13902, "wip", "main"))
    assert rc == 1 and found(checks["title"])[0][:2] == ("CM002", "error")


def test_pre_push_checks_what_the_pull_request_will(bai_main: Repo, tmp_path: Path) -> None:
    """The pre-push hook's `devkit check news --pushed`: no pull request yet (no `gh`), a missing
    fragment only warns; with one (a STAND-IN `gh` on PATH that prints what `gh pr view --json`
    does), its labels and number count as in `devkit ci`."""
    adopt(bai_main, "main")
    branch(bai_main, "feat/BA-4-push", "feat(BA-4): push early", {"tools/devkit_probe.txt": "x\n"})
    bai_main.env["PATH"] = f"{tmp_path / 'no-gh'}:{bai_main.env['PATH']}"
    p = bai_main.devkit("check", "news", "--pushed", env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stdout
    assert "changes: warning NF011 [fragment-missing]" in p.stdout
    assert "no pull request for `feat/BA-4-push` yet" in p.stdout

    stand_in = tmp_path / "stand-in-bin"
    stand_in.mkdir()

    def gh_says(labels: list[str]) -> dict[str, str]:
        answer = {
            "number": 13903, "title": "feat(BA-4): push early", "state": "OPEN",
            "labels": [{"name": n} for n in labels], "baseRefName": "main",
            "headRefName": "feat/BA-4-push", "isCrossRepository": False,
        }  # fmt: skip
        (stand_in / "gh").write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(answer)}\nEOF\n")
        (stand_in / "gh").chmod(0o755)
        return {"PATH": f"{stand_in}:{os.environ['PATH']}"}

    p = bai_main.devkit("check", "news", "--pushed", env=gh_says(["skip:changelog"]))
    assert (
        p.returncode == 0 and "skipped: the pull request has the `skip:changelog` label" in p.stdout
    )
    p = bai_main.devkit("check", "news", "--pushed", env=gh_says(["area:docs"]))
    assert p.returncode == 1 and "changes: error NF011 [fragment-missing]" in p.stdout
    assert "--pr 13903" in p.stdout


def test_news_preview_renders_the_branch_fragment(bai_main: Repo) -> None:
    """towncrier imported `ai.backend.manager` for the project's name (ModuleNotFoundError: `ai`,
    the package is under src/); the version is the repository's VERSION."""
    adopt(bai_main, "main")
    fragments = {"changes/13904.feature.md": "Render the branch's fragment in the preview\n",
                 "changes/fix.md": "Show the placeholder too\n"}  # fmt: skip
    branch(bai_main, "feat/BA-5-preview", "feat(BA-5): preview", fragments)
    version = (bai_main.path / "VERSION").read_text().strip()
    p = bai_main.devkit("news", "preview")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"## {version} (")
    assert (
        "* Render the branch's fragment in the preview "
        "([#13904](https://github.com/lablup/backend.ai/issues/13904))"
    ) in p.stdout.splitlines()
    assert "- Fixes: Show the placeholder too (changes/fix.md)" in p.stdout.splitlines()
    assert sys.executable  # towncrier ran in devkit's interpreter, where `ai` does not import
