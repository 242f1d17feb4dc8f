"""The check commands end to end: the real CLI against real git repositories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.gitrepo import PYPROJECT_BACKENDAI, Repo

SCISSORS = "# ------------------------ >8 ------------------------"


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout


# --- check commit: the hook file ---------------------------------------------------------------


def test_hook_file_with_comments_and_scissors_passes(repo: Repo) -> None:
    repo.write(
        ".git/COMMIT_EDITMSG",
        f"feat: add search\n\n# Please enter the commit message\n{SCISSORS}\ndiff --git a b\n+junk: x\n",
    )
    p = repo.devkit("check", "commit", ".git/COMMIT_EDITMSG")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "devkit: all good (1 commit message checked)\n"


def test_hook_file_text_output_names_rule_line_and_hint(repo: Repo) -> None:
    repo.write("msg", "# comment first\nfeet: add search\nno blank line\n")
    p = repo.devkit("check", "commit", "msg")
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        "msg:2:1: error CM003 [type-enum] type `feet` is not allowed; allowed: `build`, `chore`, `ci`, `docs`, "
        "`feat`, `fix`, `perf`, `refactor`, `revert`, `style`, `test`",
        "    hint: Did you mean `feat`?",
        "msg:3:1: error CM012 [body-leading-blank] the body must be separated from the header by a blank line",
        "    hint: Insert an empty line after the header.",
        "devkit: 2 error(s), 0 warning(s) (1 commit message checked)",
    ]


def test_json_and_github_formats(repo: Repo, tmp_path: Path) -> None:
    repo.write("msg", "fix:x\n")
    p = repo.devkit("check", "commit", "msg", "--format", "json")
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert data["version"] == 1 and data["ok"] is False and data["errors"] == 1
    (check,) = data["checks"]
    assert check["check"] == "commit" and check["checked"] == 1
    assert check["violations"] == [
        {
            "code": "CM002",
            "name": "header-format",
            "severity": "error",
            "message": "expected a space after `:`",
            "hint": "Write `fix: x`.",
            "context": "fix:x",
            "location": {"file": "msg", "line": 1, "col": 5, "commit": None},
        }
    ]
    summary = tmp_path / "summary.md"
    p = repo.devkit(
        "check", "commit", "msg", "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert p.returncode == 1
    assert (
        p.stdout.splitlines()[0]
        == "::error file=msg,line=1,col=5,title=devkit CM002 header-format::expected a space after `:` — Write `fix: x`."
    )
    assert "| commit | ❌ fail | 1 | 1 | 0 |" in summary.read_text()


def test_crlf_bom_and_no_final_newline(repo: Repo) -> None:
    repo.write("msg", b"\xef\xbb\xbffeat: x\r\n\r\nbody\r\n# c")
    assert repo.devkit("check", "commit", "msg").returncode == 0


def test_undecodable_bytes_are_a_violation_not_a_traceback(repo: Repo) -> None:
    repo.write("msg", b"feat: caf\xe9\n")
    p = repo.devkit("check", "commit", "msg")
    no_traceback(p)
    assert p.returncode == 1
    assert (
        "msg:1: error CM023 [message-encoding] the message is not valid UTF-8: byte 9 is not valid UTF-8"
        in p.stdout
    )


@pytest.mark.parametrize(("setting", "comment"), [(";", ";"), ("auto", ";")])
def test_comment_char_from_git_config(repo: Repo, setting: str, comment: str) -> None:
    repo.git("config", "core.commentChar", setting)
    repo.write(
        "msg",
        f"#123: not a comment now\n\n{comment} Please enter the commit message\n{comment} {SCISSORS[2:]}\nrest\n",
    )
    p = repo.devkit("check", "commit", "msg")
    assert p.returncode == 1
    assert "CM002" in p.stdout and "`#`" in p.stdout


def test_missing_file_and_no_input_are_usage_errors(repo: Repo) -> None:
    p = repo.devkit("check", "commit", "nope")
    no_traceback(p)
    assert p.returncode == 2
    assert p.stderr.startswith(
        "devkit: error: cannot read the message file nope: No such file or directory"
    )
    p = repo.devkit("check", "commit")
    assert p.returncode == 2 and "nothing to check" in p.stderr


def test_real_git_commit_message_from_editor(repo: Repo, tmp_path: Path) -> None:
    """git writes COMMIT_EDITMSG with its own comment block; the hook input passes as written."""
    editor = tmp_path / "editor.sh"
    editor.write_text(
        '#!/bin/sh\nprintf "feat: edited\\n\\nbody\\n$(cat "$1")" > "$1.new" && mv "$1.new" "$1"\n'
    )
    editor.chmod(0o755)
    hook = repo.path / ".git" / "hooks" / "commit-msg"
    import sys

    hook.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m devkit check commit "$1"\n')
    hook.chmod(0o755)
    repo.write("a.txt", "a\n")
    repo.git("add", "a.txt")
    env = dict(repo.env, GIT_EDITOR=str(editor))
    p = subprocess.run(
        ["git", "commit", "-v", "-q"],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert repo.git("log", "-1", "--format=%s").strip() == "feat: edited"
    p = subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "Updated stuff"],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 1 and "CM002" in p.stderr  # git shows a hook's output on stderr


# --- check commit: a range ---------------------------------------------------------------------


def test_range_decides_special_commits_from_the_commit(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feat/x")
    good = repo.commit("feat: add x", {"x.py": "x = 1\n"})
    bad = repo.commit("Added y", {"y.py": "y = 1\n"})
    repo.git("revert", "--no-edit", bad)
    repo.commit("fixup! feat: add x", {"x.py": "x = 2\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("docs: base moves on", {"README": "r\n"})
    repo.git("checkout", "-q", "feat/x")
    repo.git("merge", "-q", "--no-edit", "main")
    fake_merge = repo.commit("Merge the new parser", {"z.py": "z = 1\n"})
    p = repo.devkit("check", "commit", "--range", "main..feat/x", "--format", "json")
    data = json.loads(p.stdout)
    found = [(v["code"], v["location"]["commit"]) for v in data["checks"][0]["violations"]]
    assert found == [("CM002", bad), ("CM002", fake_merge)]
    assert data["checks"][0]["checked"] == 6
    assert p.returncode == 1
    assert good not in {c for _, c in found}
    text = repo.devkit("check", "commit", "--range", "main..feat/x").stdout
    assert f"commit {bad[:10]} 'Added y'" in text


def test_range_errors_are_one_line(repo: Repo) -> None:
    p = repo.devkit("check", "commit", "--range", "nope..HEAD")
    no_traceback(p)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0].startswith("devkit: error: `git log nope..HEAD` failed:")


def test_empty_range_says_so(repo: Repo) -> None:
    p = repo.devkit("check", "commit", "--range", "HEAD..HEAD")
    assert p.returncode == 0 and "has no commits" in p.stdout


# --- check branch --------------------------------------------------------------------------------


def test_branch_current_detached_and_ci(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "Login_Form")
    p = repo.devkit("check", "branch")
    assert p.returncode == 1
    assert "BR001 [branch-pattern] branch `Login_Form` does not match `<type>/<slug>`" in p.stdout
    assert "git branch -m feat/login-form" in p.stdout
    repo.git("checkout", "-q", "--detach")
    p = repo.devkit("check", "branch")
    assert p.returncode == 0 and "HEAD is detached" in p.stdout
    p = repo.devkit("check", "branch", env={"GITHUB_HEAD_REF": "feat/ok"})
    assert p.returncode == 0 and p.stdout == "devkit: all good (1 branch name checked)\n"
    p = repo.devkit("check", "branch", env={"GITHUB_HEAD_REF": "bad name"})
    assert p.returncode == 1


def test_branch_unborn_and_exempt(tmp_path: Path) -> None:
    r = Repo.init(tmp_path / "new", tmp_path / "home", branch="wip")
    p = r.devkit("check", "branch")
    assert p.returncode == 1 and "`wip`" in p.stdout
    r.git("symbolic-ref", "HEAD", "refs/heads/main")
    p = r.devkit("check", "branch")
    assert p.returncode == 0 and "exempt" in p.stdout
    assert r.devkit("check", "branch", "--name", "fix/typo").returncode == 0


def test_backendai_branches(repo: Repo) -> None:
    repo.write("pyproject.toml", PYPROJECT_BACKENDAI)
    assert repo.devkit("check", "branch", "fix/BA-123-x").returncode == 0
    assert repo.devkit("check", "branch", "26.4").returncode == 0
    # CONTRIBUTING.md: branch prefixes are recommended, "not strictly enforced" (issue 13)
    p = repo.devkit("check", "branch", "BA-123-x")
    assert p.returncode == 0 and "warning BR001" in p.stdout and "feat/BA-123-x" in p.stdout


def test_bad_config_is_one_line_naming_file_and_key(repo: Repo) -> None:
    repo.write("pyproject.toml", "[tool.devkit.commit]\nheader_max_length = 'long'\n")
    p = repo.devkit("check", "commit", "-m", "feat: x")
    no_traceback(p)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == (
        f"devkit: error: {repo.path}/pyproject.toml: tool.devkit.commit.header_max_length: "
        "expected a non-negative integer, got str 'long'"
    )


# --- check news / news new / assign / preview ----------------------------------------------------


def test_news_base_requires_an_added_fragment(repo: Repo) -> None:
    repo.commit("docs: old fragment", {"changes/7.fix.md": "Old fix\n"})
    repo.git("checkout", "-q", "-b", "feat/x")
    repo.commit("feat: code only", {"src/app.py": "print(1)\n"})
    p = repo.devkit("check", "news", "--base", "main")
    assert p.returncode == 1 and "NF011 [fragment-missing]" in p.stdout
    repo.commit("docs: touch the old one", {"changes/7.fix.md": "Old fix, reworded\n"})
    assert repo.devkit("check", "news", "--base", "main").returncode == 1  # modified, not added
    repo.commit("docs: add fragment", {"changes/12.feature.md": "Add the thing\n"})
    p = repo.devkit("check", "news", "--base", "main")
    assert p.returncode == 0, p.stdout
    p = repo.devkit("check", "news", "--base", "main", "--pr", "13")
    assert p.returncode == 1
    assert (
        "changes/12.feature.md: error NF008 [fragment-number] `changes/12.feature.md` is numbered `12`, not the pull request #13"
        in p.stdout
    )
    assert "Rename it: `git mv changes/12.feature.md changes/13.feature.md`." in p.stdout
    sub = repo.path / "src"
    p = repo.devkit("check", "news", "--base", "main", "--pr", "12", cwd=sub)
    assert p.returncode == 0, p.stdout + p.stderr


def test_news_content_and_names(repo: Repo) -> None:
    repo.write("changes/1.fix.md", "")
    repo.write("changes/2.bugfix.md", "Fix\n")
    repo.write("changes/3.fix.md", "Add your info here\n")
    repo.write("changes/4.fix.md", b"caf\xe9\n")
    (repo.path / "changes" / "5.fix.md").symlink_to("3.fix.md")
    (repo.path / "changes" / "sub").mkdir()
    repo.write("changes/fix.md", "Placeholder\n")
    p = repo.devkit("check", "news", "--format", "json")
    got = sorted(
        (v["code"], v["location"]["file"], v["severity"])
        for v in json.loads(p.stdout)["checks"][0]["violations"]
    )
    assert got == [
        ("NF002", "changes/2.bugfix.md", "error"),
        ("NF003", "changes/fix.md", "warning"),
        ("NF004", "changes/1.fix.md", "error"),
        ("NF005", "changes/3.fix.md", "error"),
        ("NF009", "changes/4.fix.md", "error"),
        ("NF010", "changes/5.fix.md", "error"),
        ("NF010", "changes/sub", "error"),
    ]
    assert p.returncode == 1


def test_news_missing_base_and_shallow_clone(repo: Repo, tmp_path: Path) -> None:
    p = repo.devkit("check", "news", "--base", "origin/main")
    no_traceback(p)
    assert (
        p.returncode == 2
        and "base ref `origin/main` does not exist here; nothing was checked" in p.stderr
    )
    for i in range(3):
        repo.commit(f"feat: step {i}", {"src/app.py": f"print({i})\n"})
    repo.git("branch", "feat/x")
    repo.git("checkout", "-q", "feat/x")
    repo.commit("feat: on branch", {"changes/9.feature.md": "Add it\n"})
    clone = tmp_path / "clone"
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            "--depth",
            "1",
            "--branch",
            "feat/x",
            f"file://{repo.path}",
            str(clone),
        ],
        env=repo.env,
        check=True,
    )
    c = Repo(clone, repo.env)
    c.git("fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main")
    p = c.devkit("check", "news", "--base", "origin/main")
    no_traceback(p)
    assert p.returncode == 2
    assert "have no merge base because the clone is shallow; nothing was checked" in p.stderr


def test_news_new_assign_and_preview(repo: Repo) -> None:
    p = repo.devkit("news", "new", "fix", "Fix the thing", "--pr", "123")
    assert p.returncode == 0 and p.stdout == "wrote changes/123.fix.md\n"
    assert (repo.path / "changes/123.fix.md").read_text() == "Fix the thing\n"
    assert (
        repo.devkit("news", "new", "fix", "Fix another", "--pr", "123").stdout
        == "wrote changes/123.fix.1.md\n"
    )
    p = repo.devkit("news", "new", "bugfix", "x")
    assert p.returncode == 2 and "Did you mean `fix`?" in p.stderr
    assert (
        repo.devkit("news", "new", "feature", "Add a thing").stdout == "wrote changes/feature.md\n"
    )
    assert repo.devkit("news", "new", "feature", "Again").returncode == 2
    p = repo.devkit("news", "assign", "77")
    assert p.returncode == 0 and p.stdout == "changes/feature.md -> changes/77.feature.md\n"
    assert (repo.path / "changes/77.feature.md").read_text() == "Add a thing\n"
    repo.write("changes/doc.md", "Doc it\n")
    repo.write("changes/77.doc.md", "Taken\n")
    p = repo.devkit("news", "assign", "77")
    assert p.returncode == 2 and "changes/77.doc.md already exists; nothing was renamed" in p.stderr
    assert (repo.path / "changes/doc.md").exists()
    (repo.path / "changes/77.doc.md").unlink()
    p = repo.devkit("news", "preview")
    assert p.returncode == 0, p.stderr
    assert "## 1.2.0" in p.stdout and "Fix the thing" in p.stdout and "Add a thing" in p.stdout


def test_single_line_rule_blocks_news_new(repo: Repo) -> None:
    repo.write("pyproject.toml", PYPROJECT_BACKENDAI)
    p = repo.devkit("news", "new", "fix", "Fix it. It broke.", "--pr", "5")
    assert p.returncode == 2 and "more than one sentence" in p.stderr
    assert not (repo.path / "changes/5.fix.md").exists()


def test_single_word_commands_keep_their_first_option(repo: Repo) -> None:
    p = repo.devkit("explain", "--format", "json", "CM003")
    assert p.returncode == 0 and json.loads(p.stdout)["name"] == "type-enum"
    p = repo.devkit("explain", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: devkit explain")


def test_unknown_command_suggests(repo: Repo) -> None:
    p = repo.devkit("chek", "commit")
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        "devkit: error: unknown command `chek commit`",
        "    hint: Did you mean `devkit check commit`?",
    ]
