"""Issue 22 ("Hardening III"), the conventions side: what a careless or a hostile user can hand the
checks, the news commands and init, through the real CLI, real git and real files. Each test failed
before its fix (tests/test_hardening.py holds the earlier rounds)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo
from tests.test_hardening import UNPRIVILEGED, devkit_as, one_line_error

SCISSORS = "------------------------ >8 ------------------------"


def run(
    repo: Repo, *args: str | bytes, timeout: float = 60, **kw: object
) -> subprocess.CompletedProcess[str]:
    """The real CLI with a time limit: what used to hang fails the test instead of the suite."""
    kw.setdefault("env", repo.env)
    kw.setdefault("cwd", repo.path)
    return subprocess.run(
        [sys.executable, "-m", "devkit", *args],
        capture_output=True, text=True, timeout=timeout, check=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def codes(p: subprocess.CompletedProcess[str]) -> list[tuple[str, int | None]]:
    """The (code, line) of each violation of a `--format json` run."""
    return [
        (v["code"], v["location"]["line"])
        for c in json.loads(p.stdout)["checks"]
        for v in c["violations"]
    ]


# --- git's clean-up first, on bytes: the commit-msg hook against real `git commit` ----------------


def commit_through_hook(
    repo: Repo, tmp_path: Path, message: bytes, *git_args: str, hook: str = "devkit"
) -> subprocess.CompletedProcess[str]:
    """`git commit` with an editor that writes `message` above git's own comment block (git's
    template, its status and, with -v, its scissors line and diff), and a commit-msg hook that is
    devkit (hook="devkit") or one that keeps a copy of the file, .git/HOOK_INPUT, and accepts it
    (hook="keep")."""
    body = tmp_path / "body"
    body.write_bytes(message)
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\ncat "{body}" "$1" > "$1.new" && mv "$1.new" "$1"\n')
    editor.chmod(0o755)
    hook_file = repo.path / ".git" / "hooks" / "commit-msg"
    if hook == "devkit":
        hook_file.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m devkit check commit "$1"\n')
    else:
        hook_file.write_text('#!/bin/sh\ncp "$1" .git/HOOK_INPUT\n')  # beside git's own file
    hook_file.chmod(0o755)
    return subprocess.run(
        ["git", "commit", "-q", "--allow-empty", *git_args],
        cwd=repo.path, env=dict(repo.env, GIT_EDITOR=str(editor)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_commit_v_diff_in_latin1_passes_the_hook(repo: Repo, tmp_path: Path) -> None:
    """The diff below `git commit -v`'s scissors line is never part of the message."""
    repo.write("legacy.txt", b"caf\xe9 cr\xe8me\n")
    repo.git("add", "legacy.txt")
    p = commit_through_hook(repo, tmp_path, b"feat: add the legacy menu\n", "-v")
    assert p.returncode == 0, p.stdout + p.stderr
    assert repo.git("log", "-1", "--format=%s").strip() == "feat: add the legacy menu"


@pytest.mark.parametrize(
    "data",
    [
        b"feat: x\n\n# caf\xe9 in a comment\n",
        b"feat: x\n\n# a NUL \0 in a comment\n",
        f"feat: x\n\n# {SCISSORS}\ndiff --git a/b b/b\n+caf\xe9 \0\n".encode("latin-1"),
    ],
    ids=["latin1-comment", "nul-comment", "below-the-scissors"],
)
def test_bytes_git_drops_are_never_checked(repo: Repo, data: bytes) -> None:
    repo.write("msg", data)
    p = repo.devkit("check", "commit", "msg")
    assert p.returncode == 0, p.stdout


def test_bytes_git_keeps_are_still_checked(repo: Repo) -> None:
    repo.write("msg", f"feat: x\n\n# c\nbody \0\n# {SCISSORS}\n+y\n".encode())
    p = repo.devkit("check", "commit", "msg")
    assert p.returncode == 1 and "msg:4: error CM023" in p.stdout and "NUL byte" in p.stdout
    repo.write("msg", b"feat: x\n\n# c\ncaf\xe9\n")
    p = repo.devkit("check", "commit", "msg")
    assert (
        "msg:4: error CM023 [message-encoding] the message is not valid UTF-8: byte 16" in p.stdout
    )


# (config, message the editor writes, git commit's extra arguments); git's own template follows
COMMENT_CASES = {
    # a body line that ends like a scissors line is text: once it set the comment string to "f"
    # (the header became a comment: "empty") or to "BREAKING CHANGE:" (the empty footer vanished)
    "default-f": (None, f"fix: y\n\nf {SCISSORS}\n", ()),
    "default-footer": (None, f"fix: y\n\nBREAKING CHANGE:\nBREAKING CHANGE: {SCISSORS}\n", ()),
    "default-v": (None, f"fix: y\n\nBREAKING CHANGE:\n; {SCISSORS}\n", ("-v",)),
    # another comment character: a `#` scissors line in the body is text, not the cut
    "semicolon": (";", f"feat: x\n\n#123 is the issue\n# {SCISSORS}\nBREAKING CHANGE:\n", ()),
    "semicolon-v": (
        ";",
        f"feat: x\n\n#123 is the issue\n# {SCISSORS}\nBREAKING CHANGE:\n",
        ("-v",),
    ),
    "percent": ("%", "feat: x\n\n% a comment\n#1 kept\n", ()),
    # auto: git chose `#` (the message it started from had none); a `;` line is text
    "auto": ("auto", f"feat: x\n\n; {SCISSORS}\nBREAKING CHANGE:\n", ()),
    "auto-v": ("AUTO", f"feat: x\n\n; {SCISSORS}\nBREAKING CHANGE:\n", ("-v",)),
}


@pytest.mark.parametrize("case", COMMENT_CASES, ids=list(COMMENT_CASES))
def test_the_hook_file_gets_the_verdict_of_what_git_commits(
    repo: Repo, tmp_path: Path, case: str
) -> None:
    """Real `git commit`: devkit's verdict on the file git hands the hook is its verdict on the
    message git then stores (git's clean-up, with git's own comment character)."""
    setting, message, extra = COMMENT_CASES[case]
    if setting:
        repo.git("config", "core.commentChar", setting)
    p = commit_through_hook(repo, tmp_path, message.encode(), *extra, hook="keep")
    assert p.returncode == 0, p.stderr
    stored = repo.head()
    by_file = repo.devkit("check", "commit", ".git/HOOK_INPUT", "--format", "json")
    by_range = repo.devkit(
        "check", "commit", "--range", f"{stored}~1..{stored}", "--format", "json"
    )
    assert codes(by_file) == codes(by_range) != [("CM001", 0)], (by_file.stdout, by_range.stdout)


def test_auto_reads_the_character_git_chose_from_its_template(repo: Repo, tmp_path: Path) -> None:
    """A commit template with a `#` line makes git choose `;`: that line is part of the message
    (here right below the header, where the spec wants a blank line)."""
    repo.git("config", "core.commentChar", "auto")
    template = tmp_path / "template"
    template.write_text("\n#1 is the issue\n")
    p = commit_through_hook(repo, tmp_path, b"feat: x", "-t", str(template))
    assert p.returncode == 1 and "CM012 [body-leading-blank]" in p.stderr, p.stderr
    p = commit_through_hook(repo, tmp_path, b"feat: x", "-t", str(template), hook="keep")
    assert (
        p.returncode == 0 and repo.git("log", "-1", "--format=%B") == "feat: x\n#1 is the issue\n\n"
    )
    assert "\n; Please enter the commit message" in (repo.path / ".git/HOOK_INPUT").read_text()


@pytest.mark.parametrize("blank", ["\u3000", "\x0b", "\x0c", "\u00a0"])
def test_only_git_blanks_are_blank_lines(repo: Repo, tmp_path: Path, blank: str) -> None:
    """git's isspace() is ASCII: a line of U+3000, VT, FF or NBSP is text to git, so the body
    follows the header without a blank line."""
    message = f"feat: x\n{blank}\nbody\n"
    repo.write("msg", message)
    p = repo.devkit("check", "commit", "msg", "--format", "json")
    assert ("CM012", 2) in codes(p), p.stdout
    repo.git("commit", "-q", "--allow-empty", "--cleanup=strip", "-F", "msg")
    assert repo.git("log", "-1", "--format=%B") == message + "\n"  # git kept the line


def test_m_and_a_file_agree_on_undecodable_bytes(repo: Repo) -> None:
    data = b"feat: caf\xe9\n\nbody\n"
    repo.write("msg", data)
    by_file = run(repo, "check", "commit", "msg", "--format", "json")
    by_m = run(repo, b"check", b"commit", b"-m", data, b"--format", b"json")  # type: ignore[arg-type]
    assert by_file.returncode == by_m.returncode == 1
    assert codes(by_file) == codes(by_m) == [("CM023", 1)]


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_message_file_that_is_no_regular_file(repo: Repo, kind: str) -> None:
    path = "/dev/zero"
    if kind == "fifo":
        os.mkfifo(repo.path / "msg")
        path = "msg"
    p = run(repo, "check", "commit", path, timeout=30)
    what = "a FIFO" if kind == "fifo" else "a device"
    one_line_error(p, f"cannot read the message file {path}: it is {what}, not a regular file")


def _memory_cap() -> None:  # a reader without a bound runs out of this long before the file ends
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_the_message_file_is_read_with_a_bound(repo: Repo) -> None:
    with open(repo.path / "huge", "wb") as fh:  # sparse: 4 GiB of NULs, no disk used
        fh.truncate(4 << 30)
    p = run(repo, "check", "commit", "huge", timeout=60, preexec_fn=_memory_cap)
    one_line_error(p, "the message file huge is too large to be a commit message")
    # a `git commit -v` diff of any size: what counts lies above the scissors line
    with open(repo.path / "verbose", "wb") as fh:
        fh.write(f"feat: x\n\n# {SCISSORS}\n".encode())
        fh.truncate(4 << 30)
    p = run(repo, "check", "commit", "verbose", timeout=60, preexec_fn=_memory_cap)
    assert p.returncode == 0, p.stdout + p.stderr


# --- the spec: a breaking change is `BREAKING CHANGE: <description>` ------------------------------


def test_breaking_change_with_the_hash_separator(repo: Repo) -> None:
    """Conventional Commits rule 12: `BREAKING CHANGE: <description>`, never `BREAKING CHANGE #42`."""
    p = repo.devkit("check", "commit", "-m", "feat: drop v1\n\nBREAKING CHANGE #42")
    assert p.returncode == 1
    assert (
        "message:3:16: error CM014 [breaking-change-token] `BREAKING CHANGE #` is not" in p.stdout
    )
    assert (
        "hint: Describe the break after `BREAKING CHANGE: `" in p.stdout
        and "`Refs #42`" in p.stdout
    )
    ok = repo.devkit(
        "check", "commit", "-m", "feat: drop v1\n\nBREAKING CHANGE: v1 is gone\nRefs #42"
    )
    assert ok.returncode == 0, ok.stdout
    explain = repo.devkit("explain", "CM014").stdout
    assert "`BREAKING CHANGE: <description>`" in explain and "` #` separator" in explain


# --- what devkit prints ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "commit", "-m", "\x1b]0;owned\x07feet\x1b[2J: x"],
        ["check", "commit", "-m", "feat: x\n\nBreaking change: \x1b[2J\x9b2J"],
        ["check", "branch", "Feature_\x1b[2Jlogin"],
        ["check", "commit", "--range", "\x1b[2J..HEAD"],
        ["check", "news", "\x1b[2J"],
        ["news", "new", "\x1b[2Jfix", "text"],
    ],
)
@pytest.mark.parametrize("fmt", ["text", "github", "json"])
def test_control_characters_are_printed_as_escapes(repo: Repo, argv: list[str], fmt: str) -> None:
    p = repo.devkit(*argv, *(["--format", fmt] if argv[0] == "check" else []))
    assert p.returncode in (1, 2), p.stderr
    out = p.stdout + p.stderr
    assert not any(0x7F <= ord(ch) < 0xA0 or (ord(ch) < 0x20 and ch not in "\n\t") for ch in out), (
        out
    )
    assert "\\x1b" in out or "\\u001b" in out, out  # shown, as an escape


# --- did-you-mean on unbounded input --------------------------------------------------------------


def test_a_3mb_type_is_checked_in_linear_time(repo: Repo) -> None:
    repo.write("msg", "x" * 3_000_000 + ": y\n")
    p = run(repo, "check", "commit", "msg", timeout=30)
    assert p.returncode == 1 and "CM003" in p.stdout


# --- the project's regexes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "argv"),
    [
        ('[tool.devkit.commit]\ntypes = "(a+)+"\n', ["check", "commit", "-m", "a" * 40 + "b: x"]),
        ('[tool.devkit.commit]\nscope_patterns = ["(\\\\w+\\\\s?)*"]\n',
         ["check", "commit", "-m", "feat(" + "a" * 40 + "!): x"]),
        ('[tool.devkit.branch]\nexempt = ["(a|aa)+"]\n', ["check", "branch", "a" * 40 + "b"]),
        ('[tool.devkit.branch]\npatterns = [".*a.*a.*a.*b"]\n', ["check", "branch", "a" * 250]),
    ],
    ids=["types", "scope-patterns", "branch-exempt", "branch-pattern"],
)  # fmt: skip
def test_a_regex_that_backtracks_exponentially_is_refused(
    repo: Repo, table: str, argv: list[str]
) -> None:
    repo.write("pyproject.toml", PYPROJECT_CONVENTIONAL + table)
    p = run(repo, *argv, timeout=30)
    one_line_error(p, "can take exponential time on a near miss")
    assert "pyproject.toml: tool.devkit." in p.stderr


# --- configuration files: one loader per format, a cache that sees every rewrite ------------------


def test_a_same_size_rewrite_in_the_same_tick_is_seen(repo: Repo) -> None:
    """The config cache keyed on (mtime, size, inode) missed a rewrite that keeps all three."""
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(PYPROJECT_CONVENTIONAL + '[tool.devkit.commit]\ntypes = ["abc", "fix"]\n')
    assert repo.devkit("check", "commit", "-m", "fix: x").returncode == 0  # cached
    before = pyproject.stat()
    with open(pyproject, "r+") as fh:  # in place: the same inode and size
        text = fh.read()
        fh.seek(0)
        fh.write(text.replace('"fix"]', '"fox"]'))
    os.utime(pyproject, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = pyproject.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns,
    )  # fmt: skip
    p = repo.devkit("check", "commit", "-m", "fix: x")
    assert p.returncode == 1 and "allowed: `abc`, `fox`" in p.stdout, p.stdout


@pytest.mark.parametrize("where", ["pyproject.toml", "towncrier.toml"])
def test_deeply_nested_toml_is_a_config_error(repo: Repo, where: str) -> None:
    deep = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    if where == "towncrier.toml":
        repo.write(where, '[tool.towncrier]\ndirectory = "changes"\n' + deep)
        p = run(repo, "check", "news")
    else:
        repo.write(where, PYPROJECT_CONVENTIONAL + deep)
        p = run(repo, "check", "commit", "-m", "feat: x")
    one_line_error(p, f"{where}: invalid TOML: arrays or tables nested too deeply")


def test_deeply_nested_stack_toml_is_a_config_error(tmp_path: Path) -> None:
    from devkit.errors import ConfigError
    from devkit.provision.kinds.registry import load_stack

    (tmp_path / "stack.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_stack(str(tmp_path))


# --- the GitHub event and the job summary ---------------------------------------------------------


def event_run(
    repo: Repo, event: str | None, *argv: str, **env: str
) -> subprocess.CompletedProcess[str]:
    if event is not None:
        (repo.path / ".git" / "event.json").write_text(event)
        env.setdefault("GITHUB_EVENT_PATH", str(repo.path / ".git" / "event.json"))
    return run(repo, *argv, env=dict(repo.env, **env), timeout=30)


@pytest.mark.parametrize("number", [0, -5])
def test_event_pull_request_numbers_are_positive(repo: Repo, number: int) -> None:
    event = json.dumps({"pull_request": {"number": number, "title": "feat: x"}})
    p = event_run(repo, event, "ci", "--base", "main")
    one_line_error(p, f"the pull request number {number} is not a positive integer")


def test_a_deeply_nested_event_is_an_error(repo: Repo) -> None:
    p = event_run(repo, "[" * 100_000 + "]" * 100_000, "ci", "--base", "main")
    one_line_error(p, "is not valid JSON: nested too deeply")


def test_event_file_and_step_summary_that_are_fifos(repo: Repo) -> None:
    os.mkfifo(repo.path / "event.json")
    p = event_run(repo, None, "ci", "--base", "main", GITHUB_EVENT_PATH="event.json")
    one_line_error(p, "cannot read GITHUB_EVENT_PATH event.json: it is a FIFO, not a regular file")
    os.mkfifo(repo.path / "summary.md")
    p = event_run(repo, None, "check", "commit", "-m", "feet: x", "--format", "github",
                  GITHUB_STEP_SUMMARY="summary.md")  # fmt: skip
    assert p.returncode == 1 and p.stdout.startswith("::error ")
    assert p.stderr == (
        "devkit: warning: cannot write the job summary to GITHUB_STEP_SUMMARY summary.md: "
        "it is a FIFO, not a regular file\n"
    )


# --- the branch memo ------------------------------------------------------------------------------


def test_the_branch_memo_leaves_no_temp_file(repo: Repo) -> None:
    (repo.path / ".git" / "devkit-branch.cache").mkdir()  # the rename onto it fails
    p = repo.devkit("check", "branch", "feat/x")
    assert p.returncode == 0, p.stderr
    assert [n for n in os.listdir(repo.path / ".git") if n.endswith(".tmp")] == []


# --- fragments and the news commands --------------------------------------------------------------


@pytest.mark.parametrize("name", ["\u00b2.fix.md", "1.fix.\u00b2.md", "\u0661.fix.md"])
def test_fragment_numbers_are_ascii_digits(repo: Repo, name: str) -> None:
    repo.write(f"changes/{name}", "Fix it\n")
    p = repo.devkit("check", "news")
    assert p.returncode == 1 and f"error NF001 [fragment-name] `{name}`" in p.stdout, p.stderr


def test_a_fragment_directory_that_is_a_file(repo: Repo) -> None:
    (repo.path / "changes" / "README.md").unlink()
    (repo.path / "changes").rmdir()
    repo.write("changes", "not a folder\n")
    for argv in (["check", "news"], ["news", "new", "fix", "Fix it"], ["news", "assign", "12"],
                 ["news", "preview"]):  # fmt: skip
        one_line_error(repo.devkit(*argv), "the fragment directory changes/ is not a folder")
    assert (repo.path / "changes").read_text() == "not a folder\n"


@pytest.mark.parametrize("kind", ["../escape", "a/b", "a.b", ""])
def test_towncrier_types_that_cannot_be_a_file_name(repo: Repo, kind: str) -> None:
    pyproject = PYPROJECT_CONVENTIONAL.replace('directory = "doc"', f"directory = {kind!r}")
    repo.write("pyproject.toml", pyproject.replace("'", '"'))
    for argv in (["news", "new", kind, "Escape"], ["check", "news"]):
        p = repo.devkit(*argv)
        one_line_error(p, "pyproject.toml: tool.towncrier.type: the fragment type")
    assert not (repo.path / "escape").exists() and not (repo.path / "changes" / "a").exists()


def test_news_new_reads_standard_input_as_utf8(repo: Repo) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "devkit", "news", "new", "fix", "-"], input=b"Fix caf\xe9\n",
        cwd=repo.path, env=repo.env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    one_line_error(
        subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(), p.stderr.decode()),
        "standard input is not valid UTF-8 (byte 7)",
    )
    assert sorted(os.listdir(repo.path / "changes")) == ["README.md"]


def test_news_assign_renames_only_files(repo: Repo) -> None:
    (repo.path / "changes" / "fix.md").mkdir()
    p = repo.devkit("news", "assign", "12")
    assert p.returncode == 0 and p.stdout == "no placeholder fragments to rename\n", p.stdout
    assert (repo.path / "changes" / "fix.md").is_dir()


@pytest.mark.skipif(not UNPRIVILEGED and os.geteuid() == 0, reason="needs setpriv as root")
@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["news", "new", "fix", "Fix it", "--pr", "3"], "cannot write changes/3.fix.md: Permission denied"),
        (["news", "assign", "12"], "cannot rename changes/feature.md: Permission denied; nothing was renamed"),
        (["news", "preview"], "cannot read the fragment"),
    ],
)  # fmt: skip
def test_news_commands_without_permission(repo: Repo, argv: list[str], text: str) -> None:
    repo.write("changes/fix.md", "Fix the parser\n")
    repo.write("changes/feature.md", "Add a flag\n")
    locked = repo.path / "changes" / ("fix.md" if argv[1] == "preview" else "")
    mode = locked.stat().st_mode
    locked.chmod(0o000 if argv[1] == "preview" else 0o555)
    try:
        p = devkit_as(repo, UNPRIVILEGED, *argv)
    finally:
        locked.chmod(mode)
    one_line_error(p, text)
    assert sorted(os.listdir(repo.path / "changes")) == ["README.md", "feature.md", "fix.md"]


# --- devkit init ----------------------------------------------------------------------------------


def test_init_refuses_a_folder_linked_out_of_the_repository(repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo.path / ".github").symlink_to(outside)
    before = (repo.path / "pyproject.toml").read_text()
    for argv in (["init", "--yes", "--force"], ["init", "--dry-run"]):
        p = repo.devkit(*argv)
        one_line_error(p, f".github/workflows/devkit.yml: `.github` is a symlink to {outside}")
        assert "outside the repository" in p.stderr and "hint:" in p.stderr
    assert list(outside.iterdir()) == []
    assert (repo.path / "pyproject.toml").read_text() == before  # nothing written at all
    assert not (repo.path / ".pre-commit-config.yaml").exists()
    # a link that stays inside the repository is followed
    (repo.path / ".github").unlink()
    (repo.path / "ci").mkdir()
    (repo.path / ".github").symlink_to("ci")
    assert repo.devkit("init", "--yes", "--force").returncode == 0
    assert (repo.path / "ci" / "workflows" / "devkit.yml").is_file()


@pytest.mark.skipif(not UNPRIVILEGED and os.geteuid() == 0, reason="needs setpriv as root")
def test_init_without_permission_after_some_writes(repo: Repo) -> None:
    (repo.path / ".github").mkdir()
    (repo.path / ".github").chmod(0o555)
    try:
        p = devkit_as(repo, UNPRIVILEGED, "init", "--yes", "--force")
    finally:
        (repo.path / ".github").chmod(0o755)
    one_line_error(p, "cannot write .github/workflows/devkit.yml: Permission denied; wrote ")
    assert "wrote .pre-commit-config.yaml" in p.stderr and "run `devkit init` again" in p.stderr
    leftovers = [str(f) for f in repo.path.rglob("*devkit-tmp*")]
    assert leftovers == []
    p = repo.devkit("init", "--yes", "--force")  # the rest, once it may
    assert p.returncode == 0 and (repo.path / ".github/workflows/devkit.yml").is_file(), p.stderr
