"""Proof (issue 12): properties of the CLI over generated inputs: commit messages, branch names,
fragment names and contents, pyproject contents and ranges. Whatever comes in, the exit code is 0, 1
or 2, nothing reaches the "internal error" catch-all, `--format json` prints JSON, and a message
gets the same verdict from a file, from `-m` and from `--range`.

Issue 22 added the input classes of git's clean-up (message bytes with comment lines of several
comment characters, scissors lines, undecodable bytes and NULs below the cut, git's and Unicode's
blanks: devkit's clean-up is git's own `git stripspace`), fragment names with digit-like characters,
and the project's regexes (one devkit accepts never makes a check hang).

The CLI runs in this process (its real `main`, real git repositories) so that a run costs
milliseconds. CI runs a fixed, derandomized budget; a larger one on demand:

    DEVKIT_PROOF_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_proof.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.cli import main
from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

EXAMPLES = int(os.environ.get("DEVKIT_PROOF_EXAMPLES", "60"))
budget = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 60,  # CI: the same examples every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# text that can travel as a command-line argument and a UTF-8 file (no NUL, no lone surrogates)
safe = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
PIECES = [
    "feat", "fix", "Feat", "chore", "(", ")", "!", ":", ": ", " ", "\n", "\n\n", "\r\n", "\r", "\t",
    "BREAKING CHANGE", "BREAKING-CHANGE", "Refs", " #", "Revert \"x\"", "fixup! ", "scope", "BA-12",
    ", ", ",", "é", "\u00a0", "\u200b", "x" * 70, "https://x.y/", "Signed-off-by: a", "Reviewed by: b",
    ".", "This reverts commit 0123456789abcdef.", "(#12)",
]  # fmt: skip
messages = st.one_of(
    st.text(alphabet=safe, max_size=80), st.lists(st.sampled_from(PIECES), max_size=25).map("".join)
)


class Run:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err


@contextlib.contextmanager
def inside(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def devkit(repo: Repo, *argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with inside(repo.path), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors exit the process with this code
            rc = exc.code if isinstance(exc.code, int) else 1
    run = Run(rc, out.getvalue(), err.getvalue())
    assert rc in (0, 1, 2), (argv, rc, run.err)
    assert "internal error" not in run.err and "Traceback" not in run.err, (argv, run.err)
    return run


def json_run(repo: Repo, *argv: str) -> dict:
    run = devkit(repo, *argv, "--format", "json")
    data = json.loads(run.out)  # JSON whatever happened, errors included
    assert data["ok"] is (run.rc == 0), (argv, run.rc, data)
    return data


def verdict(data: dict) -> list[tuple[str, str, int | None, int | None]]:
    return sorted(
        (v["code"], v["severity"], v["location"]["line"], v["location"]["col"])
        for c in data["checks"]
        for v in c["violations"]
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    root = tmp_path_factory.mktemp("proof")
    r = Repo.init(root / "repo", root / "home")
    r.commit("chore: start", {"pyproject.toml": PYPROJECT_CONVENTIONAL, "changes/README.md": "x\n"})
    return r


def commit_with(repo: Repo, message: str) -> str:
    """A commit whose message is exactly `message` (commit-tree does no cleanup), child of HEAD."""
    (repo.path / ".git" / "PROOF_MSG").write_bytes(message.encode())
    sha = subprocess.run(
        ["git", "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-F", ".git/PROOF_MSG"],
        cwd=repo.path, env=repo.env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return sha


@budget
@given(messages)
def test_a_message_has_one_verdict_from_a_file_from_m_and_from_a_range(
    repo: Repo, text: str
) -> None:
    msg = repo.path / ".git" / "PROOF_EDITMSG"
    msg.write_bytes(text.encode())
    by_file = json_run(repo, "check", "commit", str(msg))
    by_m = json_run(repo, "check", "commit", "-m", text)
    sha = commit_with(repo, text)
    by_range = json_run(repo, "check", "commit", "--range", f"HEAD..{sha}")
    # the three inputs differ only where git itself treats them differently: a file drops `#` comment
    # lines (git's cleanup of the editor's file), and outside a range a merge is known by its header
    lines = text.replace("\r\n", "\n").split("\n")
    if not any(line.startswith("#") for line in lines) and not text.startswith("\ufeff"):
        assert verdict(by_file) == verdict(by_m), text
    if not text.startswith(("Merge ", "\ufeff")):
        assert verdict(by_m) == verdict(by_range), text


names = st.one_of(
    st.text(alphabet=safe, max_size=40),
    st.lists(st.sampled_from(["feat", "fix", "/", ".", "..", "-", "_", "BA-1", "x", "@{", "lock",
                              ".lock", "~", "main", "release", " ", "é"]), max_size=8).map("".join),
)  # fmt: skip


@budget
@given(names)
def test_a_branch_name_devkit_passes_is_one_git_accepts(repo: Repo, name: str) -> None:
    data = json_run(repo, "check", "branch", name)
    if not name:
        return
    git = subprocess.run(
        ["git", "check-ref-format", "--branch", name], capture_output=True, check=False
    )
    if data["ok"]:
        assert git.returncode == 0, name


fragment_names = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
            min_size=1, max_size=30),
    st.lists(st.sampled_from(["12", "007", "7", "fix", "feature", "doc", "bugfix", ".", "md", "+",
                              "x", "\u00b2", "\u0661\u0662", "\u00bd"]),
             min_size=1, max_size=5).map(".".join),
)  # fmt: skip


@budget
@given(fragment_names, st.binary(max_size=120), st.sampled_from(["conventional", "backend.ai"]))
def test_any_fragment_gets_a_verdict(repo: Repo, name: str, content: bytes, preset: str) -> None:
    if name in (".", "..") or len(name.encode()) > 200:
        return
    changes = repo.path / "changes"
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(PYPROJECT_CONVENTIONAL.replace('"conventional"', f'"{preset}"'))
    path = changes / name
    path.write_bytes(content)
    try:
        json_run(repo, "check", "news")
        json_run(repo, "check", "news", "--base", "HEAD", "--pr", "12")
    finally:
        path.unlink()
        pyproject.write_text(PYPROJECT_CONVENTIONAL)


KEYS = ["preset", "rules", "commit", "branch", "news", "ci", "lint", "types", "scopes", "exempt",
        "patterns", "header_max_length", "CM005", "scope-enum", "single_line", "ruff", "x"]  # fmt: skip
toml_values = st.recursive(
    st.one_of(st.booleans(), st.integers(-5, 200), st.text(alphabet=safe, max_size=12),
              st.sampled_from(["conventional", "backend.ai", "(", "feat|fix", "warning", "0.14.0"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip


@budget
@given(st.one_of(st.dictionaries(st.sampled_from(KEYS), toml_values, max_size=5),
                 st.text(alphabet=safe, max_size=80)))  # fmt: skip
def test_any_pyproject_is_a_verdict_or_one_line(repo: Repo, devkit_table: dict | str) -> None:
    pyproject = repo.path / "pyproject.toml"
    if isinstance(devkit_table, dict):
        text = tomlkit.dumps({"tool": {"devkit": devkit_table}})
    else:
        text = devkit_table  # anything at all, TOML or not
    pyproject.write_text(text, encoding="utf-8")
    with contextlib.suppress(FileNotFoundError):
        (repo.path / ".git" / "devkit-config.cache").unlink()  # rewritten within one clock tick
    try:
        for argv in (("check", "commit", "-m", "feat: x"), ("check", "branch", "feat/x"),
                     ("check", "title", "feat: x"), ("check", "news")):  # fmt: skip
            run = devkit(repo, *argv, "--format", "json")
            json.loads(run.out)
            if run.rc == 2:
                assert run.err.startswith("devkit: error: ") and len(run.err.splitlines()) <= 2
    finally:
        pyproject.write_text(PYPROJECT_CONVENTIONAL)


ranges = st.one_of(
    st.text(alphabet=safe, max_size=30),
    st.lists(st.sampled_from(["HEAD", "main", "..", "...", "~1", "^", "--output=OUT", "-", "@{0}",
                              "nope", ":", " ", "--all"]), max_size=5).map("".join),
)  # fmt: skip


@budget
@given(ranges)
def test_any_range_is_a_verdict_or_one_line_and_never_an_option(repo: Repo, rev_range: str) -> None:
    out = repo.path / ".git" / "PROOF_OUT"
    run = devkit(
        repo, "check", "commit", f"--range={rev_range.replace('OUT', str(out))}", "--format", "json"
    )
    json.loads(run.out)
    assert not out.exists(), rev_range


# --- issue 22: git's clean-up forms, the project's regexes ------------------------------------

CLEANUP_PIECES = [
    b"feat: x", b"fix(a)!: y", b"\n", b"\n\n", b"\r\n", b"\r", b" ", b"\t", b"\x0b", b"\x0c", b"#",
    b";", b"%", b"# c", b"; c", b"#1", b"\xe9", b"\xff", b"\0", "\u3000".encode(), "\u00a0".encode(),
    b"BREAKING CHANGE:", b"BREAKING CHANGE #2", b"Refs: 1", b"body", b"x" * 30,
]  # fmt: skip
cleanup_messages = st.lists(st.sampled_from(CLEANUP_PIECES), max_size=25).map(b"".join)
CUT = "------------------------ >8 ------------------------"


def stripspace(repo: Repo, data: bytes, comment: str) -> bytes:
    """git's own clean-up of data (`git stripspace -s`, with core.commentChar=comment)."""
    return subprocess.run(
        ["git", "-c", f"core.commentChar={comment}", "stripspace", "-s"],
        input=data, cwd=repo.path, env=repo.env, capture_output=True, check=True,
    ).stdout  # fmt: skip


@budget
@given(cleanup_messages, cleanup_messages, st.sampled_from(["#", ";", "%"]))
def test_the_hook_file_is_cleaned_up_as_git_does(
    repo: Repo, above: bytes, below: bytes, comment: str
) -> None:
    """git's clean-up of a hook's file (comment lines, blank lines, trailing whitespace, the cut at
    the scissors line) is devkit's: the file's verdict is the verdict on what git keeps, and what
    lies below the cut, undecodable bytes and NULs included, never counts."""
    from devkit.conventions.message import git_cleanup

    data = above + f"\n{comment} {CUT}\n".encode() + below
    repo.git("config", "core.commentChar", comment)
    try:
        kept = stripspace(repo, above, comment)
        cleaned = git_cleanup(data, comment.encode())
        assert b"".join(line + b"\n" for line in cleaned.lines) == kept, (data, kept)
        msg = repo.path / ".git" / "PROOF_EDITMSG"
        msg.write_bytes(data)
        by_file = json_run(repo, "check", "commit", str(msg))
        if b"\0" in kept:  # git refuses it; devkit says why, where
            assert [v[0] for v in verdict(by_file)] == ["CM023"], by_file
        else:  # the same bytes as a command line: `-m` keeps them as they are
            by_m = json_run(repo, "check", "commit", "-m", os.fsdecode(kept))
            assert [v[:2] for v in verdict(by_file)] == [v[:2] for v in verdict(by_m)], data
    finally:
        repo.git("config", "--unset", "core.commentChar")


@budget
@given(cleanup_messages)
def test_m_and_a_file_agree_on_any_bytes(repo: Repo, data: bytes) -> None:
    """The same bytes (no comment line, no NUL: what a command line can carry) get one verdict."""
    if b"\0" in data or any(line[:1] in (b"#", b";", b"%") for line in data.split(b"\n")):
        return
    msg = repo.path / ".git" / "PROOF_EDITMSG"
    msg.write_bytes(data)
    by_file = json_run(repo, "check", "commit", str(msg))
    by_m = json_run(repo, "check", "commit", "-m", os.fsdecode(data))
    if not data.startswith(b"\xef\xbb\xbf"):  # a file's BOM is an editor's; an argument's is text
        assert verdict(by_file) == verdict(by_m), data


REGEX_PIECES = ["a", "b", ".", "(", ")", "(?:", "|", "*", "+", "?", "{2,}", "[ab]", r"\w", "-"]


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, derandomize=EXAMPLES <= 60)
@given(st.lists(st.sampled_from(REGEX_PIECES), min_size=1, max_size=10).map("".join))
def test_a_regex_devkit_accepts_never_makes_a_check_hang(tmp_path_factory, pattern: str) -> None:
    """Whatever regex a project configures as its types or its exempt branches, the checks answer
    in time (a refused one is a one-line error) on the near misses that make backtracking explode."""
    root = tmp_path_factory.mktemp("regex")
    r = Repo.init(root / "repo", root / "home")
    table = {"tool": {"devkit": {"commit": {"types": pattern}, "branch": {"exempt": [pattern]}}}}
    r.write("pyproject.toml", tomlkit.dumps(table))
    for near_miss in ("a" * 255 + "!", "ab" * 127 + "c", "a-" * 127 + "c"):
        for argv in (["check", "commit", "-m", f"{near_miss.rstrip('!')}: x"],
                     ["check", "branch", near_miss]):  # fmt: skip
            p = subprocess.run(
                [sys.executable, "-m", "devkit", *argv], cwd=r.path, env=r.env,
                capture_output=True, text=True, timeout=20, check=False,
            )  # fmt: skip
            assert p.returncode in (0, 1, 2) and "internal error" not in p.stderr, (pattern, p)
            if p.returncode == 2:
                assert p.stderr.startswith("devkit: error: "), p.stderr
                break  # refused: the same for every input
