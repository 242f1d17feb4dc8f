"""The news-assign workflow (issues 13 and 18): its steps' `run:` scripts, run as GitHub's bash runs
them against a pull request with a placeholder fragment, pushing to a real `origin`: the rename with
the author credited, a push that races the contributor's, the `devkit` status on a head that
GITHUB_TOKEN pushed, and a fork's pull request; and `devkit ci` accepting the placeholder meanwhile."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import yaml

from devkit.checks.news import ASSIGN_WORKFLOW
from devkit.resources import templates_dir
from tests.gitrepo import Repo
from tests.prrepo import clone, devkit, event, gh_env, run_bash, upstream

TEMPLATE = templates_dir() / "ci" / "news-assign.yml"
PUSH = "Number the placeholder fragments and push"
CI = "devkit ci on the new head (pushed with GITHUB_TOKEN, which starts no workflow)"
BOT = "github-actions[bot]"


def doc() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


def job(name: str = "assign") -> dict:
    return doc()["jobs"][name]


def step(job_name: str, name: str) -> dict:
    return next(s for s in job(job_name)["steps"] if s.get("name") == name)


def run_step(
    work: Repo,
    tmp_path: Path,
    job_name: str,
    name: str,
    env: dict[str, str],
    stand_ins: Path | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """A step's `run:` as `shell: bash` runs it (-e, pipefail), with its GITHUB_OUTPUT read back;
    stand_ins: a folder of stand-in commands put first on PATH."""
    if stand_ins is not None:
        work = Repo(work.path, {**work.env, "PATH": f"{stand_ins}{os.pathsep}{work.env['PATH']}"})
    text = step(job_name, name)["run"]
    assert "${{" not in text, "expressions need a runner to expand"
    output = tmp_path / f"output-{job_name}"
    output.write_text("")
    # a runner sets no GIT_AUTHOR_* / GIT_COMMITTER_*: the script's `git config user.*` decides
    base = {k: v for k, v in work.env.items() if not k.startswith(("GIT_AUTHOR", "GIT_COMMITTER"))}
    full = {**base, "GITHUB_OUTPUT": str(output), **env}
    p = run_bash(work, tmp_path / f"{job_name}.sh", "set -eo pipefail\n" + text, full)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return p, outputs


def job_env(pr: int = 42) -> dict[str, str]:
    """The assign job's `env:`, as the runner expands it."""
    return {"PR_NUMBER": str(pr), "BASE_REF": "main", "HEAD_REF": "feat/search"}


def placeholder_pr(tmp_path: Path) -> Repo:
    """`up`: a pull request's branch feat/search that adds changes/feature.md, pushable."""
    up = upstream(tmp_path)
    up.git("config", "receive.denyCurrentBranch", "ignore")
    up.git("checkout", "-q", "-b", "feat/search")
    up.commit(
        "feat: add search", {"src/search.py": "X = 1\n", "changes/feature.md": "Add search\n"}
    )
    up.git("checkout", "-q", "main")
    return up


def checkout(up: Repo, dest: Path, ref: str = "feat/search") -> Repo:
    """actions/checkout with `ref` and `fetch-depth: 1`."""
    work = clone(up, dest, "--depth", "1", "--branch", ref)
    return work


def stand_in(bin_dir: Path, name: str, body: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_template_pushes_with_a_token_that_starts_ci_and_keeps_forks_out() -> None:
    text = TEMPLATE.read_text()
    assert "GitHub starts no workflow run for a push made with the workflow's own GITHUB_TOKEN" in (
        " ".join(line.lstrip("# ") for line in text.splitlines())
    )
    assert doc()["permissions"] == {}
    assign = job()
    assert assign["permissions"] == {"contents": "write", "statuses": "write"}
    assert "github.event.pull_request.head.repo.full_name == github.repository" in assign["if"]
    assert "!github.event.pull_request.draft" in assign["if"]
    assert "github.actor" not in text  # a spoofable check; the bot's own push renames nothing
    checkout_step = assign["steps"][0]
    assert checkout_step["with"] == {
        "ref": "${{ github.head_ref }}",
        "fetch-depth": 1,
        "token": "${{ secrets.DEVKIT_PUSH_TOKEN || github.token }}",
    }
    # with only GITHUB_TOKEN, the job checks the new head itself
    assert assign["env"]["PUSH_TOKEN_SET"] == "${{ secrets.DEVKIT_PUSH_TOKEN != '' }}"
    ci = step("assign", CI)
    assert ci["if"] == "steps.push.outputs.head != '' && env.PUSH_TOKEN_SET != 'true'"
    assert ci["env"]["HEAD_SHA"] == "${{ steps.push.outputs.head }}"
    fork = job("fork")
    assert fork["if"] == "github.event.pull_request.head.repo.full_name != github.repository"
    assert fork["permissions"] == {"contents": "read"}


def test_workflow_numbers_the_placeholder_credits_the_author_and_pushes_once(
    tmp_path: Path,
) -> None:
    up = placeholder_pr(tmp_path)
    work = checkout(up, tmp_path / "work")

    # before the workflow has run: with the workflow in the repository, ci accepts the placeholder
    full = clone(up, tmp_path / "full")
    full.git("checkout", "-q", "feat/search")
    full.write(ASSIGN_WORKFLOW, TEMPLATE.read_text())
    p = devkit(
        full, "ci", "--base", "origin/main", "--pr", "42", "--format", "json", "--skip", "lint"
    )
    news = next(c for c in json.loads(p.stdout)["checks"] if c["check"] == "news")
    assert p.returncode == 0, p.stdout
    assert [(v["code"], v["severity"]) for v in news["violations"]] == [("NF003", "warning")]
    assert "workflow gives it the pull request's number" in news["violations"][0]["hint"]
    (full.path / ASSIGN_WORKFLOW).unlink()
    p = devkit(full, "ci", "--base", "origin/main", "--pr", "42", "--skip", "lint")
    assert (
        p.returncode == 1 and "NF008" in p.stdout
    )  # without it, the number is the contributor's job

    p, outputs = run_step(work, tmp_path, "assign", PUSH, job_env())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "changes/feature.md -> changes/42.feature.md" in p.stdout
    head = up.git("rev-parse", "feat/search").strip()
    assert outputs == {"head": head}
    pushed = up.git("log", "-1", "--format=%an%n%cn%n%B", "feat/search").strip().splitlines()
    assert pushed == [
        BOT,
        BOT,  # the bot commits ...
        "docs: number the news fragments for #42",
        "",
        "changes/feature.md -> changes/42.feature.md",
        "",
        "Co-authored-by: Dev Eloper <dev@example.com>",  # ... and credits the branch's author
    ]
    files = up.git("ls-tree", "--name-only", "feat/search", "changes/").split()
    assert "changes/42.feature.md" in files and "changes/feature.md" not in files

    # pushed with GITHUB_TOKEN, so no workflow runs on the new head: this job checks it and reports
    # it as the `devkit` status there (`gh` is a stand-in that records its call)
    calls = tmp_path / "gh-calls"
    gh_bin = tmp_path / "stand-in-bin"
    stand_in(gh_bin, "gh", f'printf "%s\\n" "$*" >> {shlex.quote(str(calls))}\n')
    ev = event(tmp_path, 42, "feat: add search", head={"ref": "feat/search", "sha": head})
    env = {
        **job_env(),
        **gh_env(tmp_path, ev),
        "HEAD_SHA": head,
        "GH_TOKEN": "not-used",
        "GITHUB_REPOSITORY": "acme/widget",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "99",
    }
    p, _ = run_step(work, tmp_path, "assign", CI, env, stand_ins=gh_bin)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("devkit: all good")
    assert calls.read_text().splitlines() == [
        f"api --silent repos/acme/widget/statuses/{head} -f state=success -f context=devkit "
        "-f description=devkit ci on the numbered head: success "
        "-f target_url=https://github.com/acme/widget/actions/runs/99"
    ]

    # the next push finds nothing to do and pushes nothing (so no status either)
    p, outputs = run_step(work, tmp_path, "assign", PUSH, job_env())
    assert p.returncode == 0 and "no placeholder fragments to rename" in p.stdout
    assert outputs == {} and up.git("rev-parse", "feat/search").strip() == head


def test_a_push_that_races_the_contributor_is_made_again_on_their_new_head(tmp_path: Path) -> None:
    up = placeholder_pr(tmp_path)
    work = checkout(up, tmp_path / "work")
    contributor = clone(up, tmp_path / "contributor")
    contributor.env = {
        **contributor.env,
        "GIT_AUTHOR_NAME": "Con Tributor",
        "GIT_AUTHOR_EMAIL": "con@example.com",
    }
    contributor.git("checkout", "-q", "feat/search")
    contributor.commit("feat: refine search", {"src/search.py": "X = 2\n"})
    # A STAND-IN `git` that makes the race certain: just before the workflow's first push, the
    # contributor's real push (from their own clone) lands; then the real git runs as asked
    real_git = shutil.which("git")
    mark = tmp_path / "contributor-pushed"
    stand_in(
        tmp_path / "race-bin",
        "git",
        f'if [ "$1" = push ] && [ ! -e {mark} ]; then\n'
        f"  touch {mark}\n"
        f"  {real_git} -C {contributor.path} push -q origin feat/search\n"
        "fi\n"
        f'exec {real_git} "$@"\n',
    )
    p, outputs = run_step(
        work, tmp_path, "assign", PUSH, job_env(), stand_ins=tmp_path / "race-bin"
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert mark.exists()
    assert "[rejected]" in p.stderr  # the first push lost the race: a real non-fast-forward
    assert (
        "::warning title=devkit news assign::the branch moved meanwhile (attempt 1): "
        "numbering its new head"
    ) in p.stdout.splitlines()
    log = up.git("log", "--format=%s|%an", "main..feat/search").strip().splitlines()
    assert log == [
        f"docs: number the news fragments for #42|{BOT}",
        "feat: refine search|Con Tributor",  # the contributor's push is kept
        "feat: add search|Dev Eloper",
    ]
    assert outputs == {"head": up.git("rev-parse", "feat/search").strip()}
    trailer = up.git("log", "-1", "--format=%(trailers:key=Co-authored-by)", "feat/search")
    assert trailer.strip() == "Co-authored-by: Con Tributor <con@example.com>"
    assert up.git("show", "feat/search:src/search.py") == "X = 2\n"
    files = up.git("ls-tree", "--name-only", "feat/search", "changes/").split()
    assert "changes/42.feature.md" in files and "changes/feature.md" not in files


def test_a_forks_placeholder_fails_the_check_with_the_rename_to_make(tmp_path: Path) -> None:
    up = placeholder_pr(tmp_path)
    work = checkout(up, tmp_path / "work")
    env = {"PR_NUMBER": "42", "BASE_REF": "main"}
    p, _ = run_step(work, tmp_path, "fork", "Name the renames the contributor makes", env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "::error file=changes/feature.md,title=devkit news assign::a fork's branch cannot be "
        "renamed from here: run `git mv changes/feature.md changes/42.feature.md`, commit and push"
    ]
    assert up.git("rev-parse", "feat/search") == work.git("rev-parse", "HEAD")  # nothing pushed
    # the contributor renames it: the check passes
    work.git("mv", "changes/feature.md", "changes/42.feature.md")
    work.git("commit", "-q", "-m", "docs: number the news fragment")
    p, _ = run_step(work, tmp_path, "fork", "Name the renames the contributor makes", env)
    assert p.returncode == 0 and p.stdout == "no placeholder fragments to rename\n"


def test_assign_only_touches_what_the_branch_adds(tmp_path: Path) -> None:
    up = upstream(tmp_path)
    up.commit("docs: an old placeholder on main", {"changes/fix.md": "Old fix\n"})
    up.git("checkout", "-q", "-b", "feat/x")
    up.commit("feat: x", {"changes/doc.md": "Document x\n"})
    p = devkit(up, "news", "assign", "9", "--base", "main", "--dry-run")
    assert p.returncode == 0 and p.stdout == "changes/doc.md -> changes/9.doc.md\n"
    p = devkit(up, "news", "assign", "9", "--base", "nope")
    assert p.returncode == 2 and "base ref `nope` does not exist" in p.stderr
    p = devkit(up, "news", "assign", "9", "--commit", "--co-author", "nobody")
    assert p.returncode == 2 and "expected 'Name <email>', got 'nobody'" in p.stderr


def test_init_writes_the_workflow_on_request(tmp_path: Path) -> None:
    up = upstream(tmp_path)
    p = devkit(up, "init", "--yes", "--force", "--assign-workflow")
    assert p.returncode == 0, p.stderr
    assert f"wrote {ASSIGN_WORKFLOW}" in p.stdout
    assert (up.path / ASSIGN_WORKFLOW).read_text() == TEMPLATE.read_text()
