"""What keeps the hooks within 2x of `python -c pass` from a wheel install (issue 13): a plain commit
message and a remembered branch verdict need no `re`; the memory never changes a verdict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.gitrepo import Repo

PROBE = """
import sys, io, contextlib
from devkit.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main({argv!r})
print(rc, sorted(m for m in ("re", "enum", "typing") if m in sys.modules), out.getvalue().splitlines()[-1])
"""


def probe(repo: Repo, *argv: str) -> tuple[str, str, str]:
    # without coverage's subprocess hook (it loads modules a real hook run never sees)
    env = {k: v for k, v in repo.env.items() if not k.startswith("COVERAGE")}
    p = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=list(argv))],
        cwd=repo.path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    rc, _, rest = p.stdout.strip().partition(" ")
    modules, _, summary = rest.partition("] ")
    return rc, modules + "]", summary


def test_a_plain_commit_message_needs_no_regex(repo: Repo) -> None:
    repo.write("msg", "feat(parser): accept footers\n\nBody text.\n\nRefs: #12\n")
    repo.devkit("check", "commit", "msg")  # warms the config cache
    assert probe(repo, "check", "commit", "msg") == (
        "0",
        "[]",
        "devkit: all good (1 commit message checked)",
    )
    rc, modules, _ = probe(repo, "check", "commit", "-m", "Merge the parser")
    assert rc == "1" and "'re'" in modules  # a message that needs a pattern still gets it


def test_the_branch_verdict_is_remembered_and_never_stale(repo: Repo) -> None:
    first = repo.devkit("check", "branch", "Add_Login")
    assert first.returncode == 1 and "BR001" in first.stdout
    assert probe(repo, "check", "branch", "Add_Login") == ("1", "[]", first.stdout.splitlines()[-1])
    assert repo.devkit("check", "branch", "Add_Login").stdout == first.stdout
    assert "'re'" in probe(repo, "check", "branch", "feat/login")[1]  # a new name is computed
    assert probe(repo, "check", "branch", "feat/login") == (
        "0",
        "[]",
        "devkit: all good (1 branch name checked)",
    )
    # other settings, other verdict
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.devkit.branch]\nexempt = ["Add_Login"]\n')
    p = repo.devkit("check", "branch", "Add_Login")
    assert p.returncode == 0 and "`Add_Login` is exempt" in p.stdout
    # a damaged memory is recomputed
    (repo.path / ".git" / "devkit-branch.cache").write_bytes(b"\x00garbage")
    assert repo.devkit("check", "branch", "Add_Login").stdout == p.stdout


def test_worktrees_keep_their_memory_in_their_own_git_dir(repo: Repo, tmp_path: Path) -> None:
    repo.git("worktree", "add", "-q", "-b", "feat/wt", str(tmp_path / "wt"))
    wt = Repo(tmp_path / "wt", repo.env)
    assert wt.devkit("check", "branch").returncode == 0
    gitdir = Path(repo.git("-C", str(wt.path), "rev-parse", "--absolute-git-dir").strip())
    assert (gitdir / "devkit-branch.cache").is_file() and (gitdir / "devkit-config.cache").is_file()
