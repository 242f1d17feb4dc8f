"""The command line's edges (issue 18, item 7): options before a command, did-you-mean only for near
misses, a ruff code given to `explain`, staged content in `lint --staged` and `check news --base`,
a fragment name's hint, shell completion, the manual page and `news new --edit`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit import __version__
from tests.gitrepo import Repo

HELP_HINT = "    hint: Run `devkit --help` for the list of commands."


def stderr_lines(repo: Repo, *args: str) -> tuple[int, list[str]]:
    p = repo.devkit(*args)
    assert "Traceback" not in p.stderr
    return p.returncode, p.stderr.splitlines()


def test_version_and_unknown_options_before_a_command(repo: Repo) -> None:
    for flag in ("-V", "--version"):
        p = repo.devkit(flag)
        assert (p.returncode, p.stdout) == (0, f"devkit {__version__}\n")
    for argv in (["--foo"], ["--verbose", "check", "branch"]):
        rc, lines = stderr_lines(repo, *argv)
        assert rc == 2
        assert lines[0] == f"devkit: error: unknown option `{argv[0]}`"  # was: unknown command ``
        assert lines[1].startswith("    hint: Before a command devkit takes --version (-V)")


def test_did_you_mean_only_for_near_misses(repo: Repo) -> None:
    assert stderr_lines(repo, "bogus") == (2, ["devkit: error: unknown command `bogus`", HELP_HINT])
    # a group's mistyped command: an error with the suggestion, not the group's help
    assert stderr_lines(repo, "check", "comit") == (
        2,
        [
            "devkit: error: unknown command `check comit`",
            "    hint: Did you mean `devkit check commit`?",
        ],
    )
    assert stderr_lines(repo, "stauts")[1][1] == "    hint: Did you mean `devkit status`?"
    p = repo.devkit("check")
    assert p.returncode == 2 and p.stdout.startswith("usage: devkit check COMMAND")


def test_explain_a_ruff_code_points_at_ruff(repo: Repo) -> None:
    rc, lines = stderr_lines(repo, "explain", "F401")
    assert rc == 2
    assert lines == [
        "devkit: error: `F401` is not one of devkit's rules: it is a ruff rule (`devkit lint` "
        "reports ruff's findings under ruff's own codes)",
        "    hint: Run `ruff rule F401` for its explanation.",
    ]
    assert stderr_lines(repo, "explain", "CM03")[1][1] == "    hint: Did you mean `CM003`?"


def test_a_misnamed_fragment_hints_at_the_type_it_resembles(repo: Repo) -> None:
    repo.write("changes/bugfix.md", "Fix the thing\n")
    p = repo.devkit("check", "news")
    assert p.returncode == 1
    assert (  # it used to suggest `123.breaking.md`, the first type
        "    hint: Rename it to `<PR>.fix.md` (the pull request's number), or `fix.md` until "
        "the pull request has one."
    ) in p.stdout.splitlines()


def test_check_news_base_counts_a_staged_fragment(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feat/x")
    repo.commit("feat: code", {"src/app.py": "print(2)\n"})
    repo.write("changes/12.feature.md", "Add the thing\n")
    assert repo.devkit("check", "news", "--base", "main").returncode == 1  # not staged: not added
    repo.git("add", "changes/12.feature.md")
    p = repo.devkit("check", "news", "--base", "main", "--pr", "12")
    assert p.returncode == 0, p.stdout
    assert "news: note: 1 fragment(s) added since `main`" in p.stdout


def test_lint_staged_lints_what_is_staged(repo: Repo) -> None:
    repo.write("src/mod.py", "import os\n")
    repo.git("add", "src/mod.py")
    repo.write(
        "src/mod.py", "X = 1\n"
    )  # fixed in the working tree only: the commit gets the import
    p = repo.devkit("lint", "--staged", "--format", "json")
    assert p.returncode == 1, p.stdout
    assert '"code": "F401"' in p.stdout and "linted as staged" in p.stdout
    repo.git("add", "src/mod.py")
    repo.write("src/mod.py", "import os\n")  # broken in the working tree only: the commit is clean
    assert repo.devkit("lint", "--staged").returncode == 0


def test_bash_completion_from_the_parser(repo: Repo, tmp_path: Path) -> None:
    script = tmp_path / "complete.sh"
    script.write_text(
        f'source <("{sys.executable}" -m devkit completion bash)\n'
        "COMP_WORDS=($WORDS); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        'COMP_LINE="$WORDS"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _shtab_devkit\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )

    def complete(words: str) -> list[str]:
        env = {**repo.env, "WORDS": words}
        p = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout.split()

    assert complete("devkit ch") == ["check"]
    assert complete("devkit check co") == ["commit"]
    assert {"--message", "--range", "--format", "--config"} <= set(
        complete("devkit check commit --")
    )
    zsh = repo.devkit("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef devkit")


@pytest.mark.skipif(not shutil.which("groff"), reason="groff renders the page")
def test_the_manual_page_has_every_command_and_renders_cleanly(repo: Repo) -> None:
    page = repo.devkit("man").stdout
    assert page.startswith(".TH DEVKIT 1 ")
    for words in ("check commit", "check news", "news new", "lint", "ci", "init", "completion"):
        assert f'.SS "devkit {words}"' in page
    assert "\\fB\\-\\-range\\fR \\fIA..B\\fR" in page and "\\fB\\-\\-pushed\\fR" in page
    r = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z"], input=page, capture_output=True, text=True
    )
    assert (r.returncode, r.stderr) == (0, "")


def test_news_new_opens_the_editor(repo: Repo, tmp_path: Path) -> None:
    editor = tmp_path / "editor"
    editor.write_text('#!/bin/sh\nprintf "Fix the login form\\n" >> "$1"\n')
    editor.chmod(0o755)
    p = repo.devkit("news", "new", "fix", "--edit", "--pr", "5", env={"GIT_EDITOR": str(editor)})
    assert (p.returncode, p.stdout) == (0, "wrote changes/5.fix.md\n")
    assert (repo.path / "changes/5.fix.md").read_text() == "Fix the login form\n"
    assert not list((repo.path / ".git").glob("DEVKIT_FRAGMENT*"))  # its temp file is gone
    blank = tmp_path / "blank"
    blank.write_text("#!/bin/sh\ntrue\n")
    blank.chmod(0o755)
    p = repo.devkit("news", "new", "doc", "--edit", env={"GIT_EDITOR": str(blank)})
    assert (p.returncode, p.stderr) == (
        2,
        "devkit: error: the entry is empty; nothing was written\n",
    )
    assert not (repo.path / "changes/doc.md").exists()


BLOCK_PROVISION = """\
import sys

class Missing:  # the hooks' environment: monorepo-devkit without its provision extra
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("fabric", "paramiko", "invoke", "rich"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Missing())
from devkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_completion_and_the_manual_page_without_the_provision_extra(repo: Repo) -> None:
    shows = {"man": "needs devkit's provision extra", "completion": "provision"}
    for argv in (["man"], ["completion", "bash"]):
        p = subprocess.run(
            [sys.executable, "-c", BLOCK_PROVISION, *argv],
            cwd=repo.path, env=repo.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert shows[argv[0]] in p.stdout
