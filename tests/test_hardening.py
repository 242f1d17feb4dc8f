"""Issue 12, items 18-26: bad input as an attacker or a careless user gives it, through the real CLI
and real git. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

# root reads any file; without these two capabilities it obeys the mode bits like everyone else
UNPRIVILEGED = (
    ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    if os.geteuid() == 0
    else []
)


def one_line_error(p: subprocess.CompletedProcess[str], text: str) -> None:
    assert "Traceback" not in p.stderr + p.stdout and "internal error" not in p.stderr, p.stderr
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("devkit: error: ") and text in p.stderr.splitlines()[0], p.stderr


def devkit_as(repo: Repo, prefix: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "devkit", *args],
        cwd=repo.path, env=repo.env, capture_output=True, text=True, check=False,
    )  # fmt: skip


# --- 18: a range is a revision range, never an option ------------------------------------------


@pytest.mark.parametrize("argv", [["--range=--output=OUT"], ["--range", "--output=OUT"]])
def test_a_range_that_looks_like_an_option_is_refused(repo: Repo, argv: list[str]) -> None:
    out = repo.path / "OUT"
    argv = [a.replace("OUT", str(out)) for a in argv]
    p = repo.devkit("check", "commit", *argv)
    assert p.returncode == 2 and "all good" not in p.stdout, p.stdout
    assert not out.exists()  # git never saw it as `--output`


# --- 19: --format json prints JSON, errors included ---------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "commit", "-m", "feat: x"],
        ["check", "branch", "feat/x"],
        ["check", "news"],
        ["check", "title", "feat: x"],
        ["ci", "--base", "main"],
        ["lint", "--all"],
    ],
)
def test_json_is_printed_for_configuration_errors(repo: Repo, argv: list[str]) -> None:
    repo.write(
        "pyproject.toml",
        PYPROJECT_CONVENTIONAL + "\n[tool.devkit.commit]\nheader_max_length = 'x'\n",
    )
    p = repo.devkit(*argv, "--format", "json")
    assert p.returncode == 2
    data = json.loads(p.stdout)
    assert data["ok"] is False and len(data["checks"]) == 1
    assert "tool.devkit.commit.header_max_length" in data["checks"][0]["error"]


def test_json_is_printed_for_usage_errors(repo: Repo) -> None:
    for argv in (
        ["check", "commit", "--format", "json", "--bogus"],
        ["check", "news", "--pr", "x"],
    ):
        p = repo.devkit(*argv, *(["--format", "json"] if "news" in argv else []))
        assert p.returncode == 2 and "usage:" in p.stderr
        assert json.loads(p.stdout)["checks"][0]["error"].startswith("usage error")
    p = repo.devkit("check", "commit", "--format", "json", env={"DEVKIT_FORMAT": "text"})
    assert p.returncode == 2 and json.loads(p.stdout)["checks"][0]["check"] == "commit"


# --- 20: what used to hit the "internal error" catch-all -----------------------------------------


def test_unreadable_pyproject_even_with_a_warm_cache(repo: Repo) -> None:
    assert repo.devkit("check", "commit", "-m", "feat: x").returncode == 0  # warms the cache
    (repo.path / "pyproject.toml").chmod(0)
    try:
        p = devkit_as(repo, UNPRIVILEGED, "check", "commit", "-m", "feat: x")
    finally:
        (repo.path / "pyproject.toml").chmod(0o644)
    one_line_error(p, "pyproject.toml: cannot read it: Permission denied")


def test_unreadable_fragment_and_fragment_directory(repo: Repo) -> None:
    repo.write("changes/1.fix.md", "Fix it\n")
    for path, text in ((repo.path / "changes/1.fix.md", "cannot read the fragment"),
                       (repo.path / "changes", "cannot read the fragment directory")):  # fmt: skip
        mode = path.stat().st_mode
        path.chmod(0)
        try:
            p = devkit_as(repo, UNPRIVILEGED, "check", "news")
        finally:
            path.chmod(mode)
        one_line_error(p, text)


def test_config_that_is_a_directory_or_a_fifo(repo: Repo) -> None:
    one_line_error(
        repo.devkit("check", "commit", "-m", "feat: x", "--config", "src"), "not a regular file"
    )
    os.mkfifo(repo.path / "fifo.toml")
    p = subprocess.run(
        [sys.executable, "-m", "devkit", "check", "branch", "feat/x", "--config", "fifo.toml"],
        cwd=repo.path, env=repo.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    one_line_error(p, "not a regular file")


def test_towncrier_config_with_invalid_utf8(repo: Repo) -> None:
    repo.write("towncrier.toml", b'[tool.towncrier]\ndirectory = "changes"\n# caf\xe9\n')
    one_line_error(repo.devkit("check", "news"), "towncrier.toml: not valid UTF-8 (byte")


def test_step_summary_in_a_missing_directory_is_a_warning(repo: Repo, tmp_path: Path) -> None:
    summary = tmp_path / "missing" / "summary.md"
    p = repo.devkit("check", "commit", "-m", "feet: x", "--format", "github",
                    env={"GITHUB_STEP_SUMMARY": str(summary)})  # fmt: skip
    assert p.returncode == 1 and p.stdout.startswith("::error ")
    assert p.stderr == (
        f"devkit: warning: cannot write the job summary to GITHUB_STEP_SUMMARY {summary}: "
        "No such file or directory\n"
    )


def test_init_on_split_and_inline_tool_tables(repo: Repo) -> None:
    split = (
        '[tool.black]\nline-length = 90\n\n[project]\nname = "x"\n\n[tool.ruff]\nline-length = 90\n'
    )
    repo.write("pyproject.toml", split)
    p = repo.devkit("init", "--yes", "--force")
    assert p.returncode == 0, p.stderr
    import tomllib

    tool = tomllib.loads((repo.path / "pyproject.toml").read_text())["tool"]
    assert tool["devkit"] == {"preset": "conventional"} and tool["black"] == {"line-length": 90}
    assert "towncrier" in tool and tool["ruff"] == {"line-length": 90}
    repo.write("pyproject.toml", 'tool = {black = {line-length = 90}}\n\n[project]\nname = "x"\n')
    p = repo.devkit("init", "--yes", "--force")
    one_line_error(p, "pyproject.toml: tool: is an inline table")
    assert (repo.path / "pyproject.toml").read_text().startswith("tool = {black")  # untouched


# --- 21: a huge footer is linear ---------------------------------------------------------------


def test_a_footer_of_200000_lines_is_joined_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: every continuation line used to rebuild the footer (quadratic)."""
    from devkit.conventions import message

    built = []
    real = message.Footer
    monkeypatch.setattr(message, "Footer", lambda *a: built.append(a) or real(*a))
    lines = ["feat: x", "", "Refs: #1", *(f"line {i}" for i in range(200_000))]
    footers, start = message.parse_footers(lines)
    assert start == 2 and len(built) == 1
    assert footers[0].value.count("\n") == 200_000


# --- 22: towncrier's duplicates ------------------------------------------------------------------


def test_two_names_for_one_fragment(repo: Repo) -> None:
    repo.write("changes/7.fix.md", "Fix it\n")
    repo.write("changes/007.fix.md", "Fix it again\n")
    p = repo.devkit("check", "news")
    assert p.returncode == 1
    assert "`7.fix.md` and `007.fix.md` are the same fragment for towncrier" in p.stdout
    assert "hint: Merge the two, or rename `7.fix.md` to `7.fix.1.md`." in p.stdout
    assert repo.devkit("news", "preview").returncode != 0  # what the check prevents


# --- 23: devkit init writes only where it says, keeps what it does not mean to change -------------


def test_init_refuses_a_fragment_directory_outside_the_repository(repo: Repo) -> None:
    extra = '\n[tool.towncrier]\ndirectory = "../outside"\n'
    repo.write("pyproject.toml", PYPROJECT_CONVENTIONAL.split("[tool.towncrier]")[0] + extra)
    p = repo.devkit("init", "--yes", "--force")
    one_line_error(p, "tool.towncrier.directory: '../outside' is outside the repository")
    assert not (repo.path.parent / "outside").exists()


def test_init_keeps_an_absolute_directory_symlinks_crlf_and_modes(
    repo: Repo, tmp_path: Path
) -> None:
    inside = repo.path / "news"
    real = tmp_path / "shared-pyproject.toml"  # no [tool.devkit] yet: init adds it
    text = f'[project]\nname = "demo"\n\n[tool.towncrier]\ndirectory = "{inside}"\n'
    real.write_bytes(text.replace("\n", "\r\n").encode())
    real.chmod(0o600)
    (repo.path / "pyproject.toml").unlink()
    (repo.path / "pyproject.toml").symlink_to(real)
    repo.write(".pre-commit-config.yaml", "repos: []\r\n")
    (repo.path / ".pre-commit-config.yaml").chmod(0o600)
    p = repo.devkit("init", "--yes", "--force", "--dry-run")
    assert f"pyproject.toml  (adds [tool.devkit]; a symlink to {real}: written there" in p.stdout
    assert "  news/README.md" in p.stdout  # the absolute path, inside the repository
    assert repo.devkit("init", "--yes", "--force").returncode == 0
    assert (repo.path / "pyproject.toml").is_symlink() and (repo.path / "news/README.md").is_file()
    for path in (real, repo.path / ".pre-commit-config.yaml"):
        data = path.read_bytes()
        assert data.count(b"\r\n") == data.count(b"\n"), path  # CRLF kept throughout
        assert (path.stat().st_mode & 0o777) == 0o600, path


# --- 24: one rule for finding the config ----------------------------------------------------------


def test_a_package_pyproject_without_the_table_defers_to_the_root(repo: Repo) -> None:
    repo.write(
        "pyproject.toml", PYPROJECT_CONVENTIONAL + '\n[tool.devkit.commit]\ntypes = ["feat"]\n'
    )
    repo.write("packages/lib/pyproject.toml", '[project]\nname = "lib"\n')
    p = repo.devkit("check", "commit", "-m", "fix: x", cwd=repo.path / "packages/lib")
    assert p.returncode == 1 and "allowed: `feat`" in p.stdout


# --- 25 -----------------------------------------------------------------------------------------


def test_a_fifo_in_the_fragment_directory_never_hangs(repo: Repo) -> None:
    repo.write("changes/1.fix.md", "Fix it\n")
    os.mkfifo(repo.path / "changes/2.fix.md")
    run = {"cwd": repo.path, "env": repo.env, "capture_output": True, "text": True, "timeout": 60}
    p = subprocess.run([sys.executable, "-m", "devkit", "news", "preview"], **run, check=False)
    one_line_error(p, "changes/2.fix.md is not a regular file; towncrier would wait on it")
    p = subprocess.run([sys.executable, "-m", "devkit", "check", "news"], **run, check=False)
    assert p.returncode == 1 and "NF010" in p.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["news", "new", "fix", "Fix it", "--pr", "-5"],
        ["news", "assign", "--", "-1"],
        ["news", "assign", "0"],
        ["check", "news", "--base", "main", "--pr", "-1"],
        ["check", "title", "feat: x", "--pr", "-2"],
        ["ci", "--base", "main", "--pr", "-3"],
    ],
)
def test_pull_request_numbers_are_positive(repo: Repo, argv: list[str]) -> None:
    p = repo.devkit(*argv)
    assert p.returncode == 2 and "is not a pull request number (a positive integer)" in p.stderr
    assert sorted(os.listdir(repo.path / "changes")) == ["README.md"]


@pytest.mark.parametrize(
    "name", ["feat/a..b", "feat/x.lock", "feat/x.", "feat/.x", "feat/a b", "feat/a~1"]
)
def test_branch_names_git_refuses(repo: Repo, name: str) -> None:
    git = subprocess.run(
        ["git", "check-ref-format", "--branch", name], capture_output=True, check=False
    )
    assert git.returncode != 0  # git itself refuses it
    p = repo.devkit("check", "branch", name)
    assert p.returncode == 1, p.stdout
    if name in ("feat/a..b", "feat/x.lock", "feat/x."):  # these match `<type>/<slug>`
        assert "BR003 [branch-ref-format]" in p.stdout, p.stdout


def test_a_nul_byte_in_a_message(repo: Repo) -> None:
    repo.write("msg", b"feat: x\n\nbody \x00 here\n")
    p = repo.devkit("check", "commit", "msg")
    assert p.returncode == 1
    assert "msg:3: error CM023 [message-encoding] the message contains a NUL byte" in p.stdout


def test_a_lone_cr_reads_the_same_from_a_file_and_from_m(repo: Repo) -> None:
    text = "feat: a\rb\n\nbody\r\n"
    repo.write("msg", text.encode())
    by_file = repo.devkit("check", "commit", "msg", "--format", "json")
    by_m = repo.devkit("check", "commit", "-m", text, "--format", "json")

    def verdict(p: subprocess.CompletedProcess[str]) -> list[tuple[str, int]]:
        return [
            (v["code"], v["location"]["line"])
            for v in json.loads(p.stdout)["checks"][0]["violations"]
        ]

    assert by_file.returncode == by_m.returncode and verdict(by_file) == verdict(by_m)


def test_repeated_m_joins_paragraphs_as_git_does(repo: Repo) -> None:
    p = repo.devkit("check", "commit", "-m", "feat: x", "-m", "BREAKING CHANGE:")
    assert p.returncode == 1 and "CM015" in p.stdout  # the second paragraph was checked too


def test_a_reader_that_goes_away_keeps_the_exit_code(repo: Repo) -> None:
    stream = bytearray()
    for i in range(400):
        msg = (
            f"Bad commit number {i} with a long enough subject to fill the pipe quickly\n".encode()
        )
        stamp = f"Dev <dev@example.com> {1_700_000_000 + i} +0000\n".encode()
        stream += b"commit refs/heads/main\nauthor " + stamp + b"committer " + stamp
        stream += b"data %d\n%s\n" % (len(msg), msg)
        stream += b"from refs/heads/main^0\n\n" if i == 0 else b"\n"
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=repo.path, input=bytes(stream), check=True
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "devkit", "check", "commit", "--range", "HEAD~400..main"],
        cwd=repo.path, env=repo.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    assert proc.wait(timeout=60) == 1
    assert b"Traceback" not in proc.stderr.read()


def test_the_nbsp_hint_passes_its_own_rule(repo: Repo) -> None:
    p = repo.devkit("check", "commit", "-m", "fix:\u00a0x")
    assert p.returncode == 1 and "hint: Write `fix: x`." in p.stdout
    assert repo.devkit("check", "commit", "-m", "fix: x").returncode == 0


def test_a_merge_at_a_shallow_boundary_is_a_merge(repo: Repo, tmp_path: Path) -> None:
    repo.git("checkout", "-q", "-b", "feat/x")
    repo.commit("feat: x", {"x.py": "x = 1\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("fix: y", {"y.py": "y = 1\n"})
    repo.git("merge", "-q", "--no-edit", "feat/x")
    repo.commit("docs: after the merge", {"z.md": "z\n"})
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "2", f"file://{repo.path}", str(shallow)],
                   env=repo.env, check=True)  # fmt: skip
    work = Repo(shallow, repo.env)
    assert "Merge branch" in work.git("log", "-1", "--format=%s", "HEAD~1")
    p = work.devkit("check", "commit", "--range", "HEAD", "--format", "json")
    data = json.loads(p.stdout)
    assert p.returncode == 0 and data["checks"][0]["violations"] == [], p.stdout
    # and git's own words when the range reaches past the clone's history
    p = work.devkit("check", "commit", "--range", "HEAD~3..HEAD")
    assert p.returncode == 2 and "fatal:" in p.stderr.splitlines()[0], p.stderr
    assert "(this is a shallow clone)" in p.stderr


# --- 26: the spec, to the letter -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "codes"),
    [
        ("feat: x\n\nBREAKING CHANGE:\nthe v1 API is gone", []),
        ("feat: \u200b\u200b", ["CM002"]),
        ("feat(\u200b): x", ["CM007"]),
        ("feat(a,,b): x", ["CM007"]),
        ("feat(a,): x", ["CM007"]),
        ("feat(a(b): x", ["CM002"]),
        ("feat: x\n\nbody\n\nReviewed by: Z", ["CM016"]),
    ],
)
def test_spec_conformance(message: str, codes: list[str]) -> None:
    from devkit.checks.commit import text_report
    from devkit.config import build

    report = text_report(message, build({"commit": {"types": []}}, "", ""))
    assert [v.code for v in report.violations] == codes


def test_tools_exist() -> None:
    assert shutil.which("git") and (not UNPRIVILEGED or shutil.which("setpriv"))
