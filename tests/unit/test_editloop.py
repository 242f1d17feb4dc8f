"""The edit loop's decisions (pure), and its host side against this machine's real git and
filesystem: which paths restart which service, syntax checks, saves seen by inotify and by polling,
and the sync's conflict rules. tests/editloop runs all of it on real hosts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devkit.errors import ConfigError
from devkit.provision.engine import report as engine_report
from devkit.provision.engine.events import ServiceStatus
from devkit.provision.kinds import edit as edit_kind
from devkit.provision.kinds.registry import load_stack
from devkit.provision.onhost import push as host_push
from devkit.provision.onhost.edit import checkout as edit_checkout
from devkit.provision.onhost.edit import imports as edit_imports
from devkit.provision.onhost.edit import latency as edit_latency
from devkit.provision.onhost.edit import report as edit_report
from devkit.provision.onhost.edit import rules as edit_rules
from devkit.provision.onhost.edit import services as edit_services
from devkit.provision.onhost.edit import watch as edit_watch
from devkit.provision.transfer import gitpush
from devkit.schema import Where

RULES = {
    "order": ["alpha", "beta"],
    "services": {
        "alpha": ["src/alpha/**", "src/common/**"],
        "beta": ["src/beta/**", "src/common/**"],
    },
    "notes": [{"paths": ["src/pages/**"], "note": "read on every request"}],
}


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("src/a/**", ["src/a/x.py", "src/a/b/c.py", "src/a"], ["src/ab/x.py", "src/x.py"]),
        ("src/a", ["src/a", "src/a/x.py", "src/a/b/c.py"], ["src/ab", "src/abc/x.py"]),
        ("src/*/BUILD", ["src/a/BUILD"], ["src/a/b/BUILD", "src/BUILD"]),
        ("**/*.py", ["x.py", "a/b/x.py"], ["x.pyc", "a/x.txt"]),
        ("src/a/?.py", ["src/a/x.py"], ["src/a/xy.py", "src/a/b/x.py"]),
        ("src/ai.backend/x+y", ["src/ai.backend/x+y"], ["src/aiXbackend/x+y"]),
    ],
)
def test_patterns_match_paths_like_their_docs_say(pattern: str, yes: list, no: list) -> None:
    m = edit_rules.matcher([pattern])
    assert [p for p in yes if not m.match(p)] == []
    assert [p for p in no if m.match(p)] == []


def test_roots_are_the_fixed_parts_without_nesting() -> None:
    assert edit_rules.roots(["src/a/**", "src/a/b/*.py", "src/c", "docs/*/x"]) == [
        "docs",
        "src/a",
        "src/c",
    ]
    assert edit_rules.roots(["**/*.py", "src/a"]) == ["."]


def test_a_service_restarts_for_its_own_files_changed_after_it_started() -> None:
    files = {"src/alpha/server.py": 105.0, "src/beta/server.py": 90.0, "README.md": 200.0}
    plan = edit_rules.decide(files, {"alpha": 100.0, "beta": 100.0}, {}, RULES)
    assert plan == {
        "restart": {"alpha": ["src/alpha/server.py"]},
        "stopped": {},
        "spared": {},
        "notes": [],
    }


def test_the_shared_package_restarts_every_service_that_declares_it() -> None:
    files = {"src/common/__init__.py": 105.0}
    plan = edit_rules.decide(files, {"alpha": 100.0, "beta": 101.0}, {}, RULES)
    assert plan["restart"] == {
        "alpha": ["src/common/__init__.py"],
        "beta": ["src/common/__init__.py"],
    }
    # beta started after the save (a restart already picked it up): alpha only
    plan = edit_rules.decide(files, {"alpha": 100.0, "beta": 106.0}, {}, RULES)
    assert plan["restart"] == {"alpha": ["src/common/__init__.py"]}


def test_notes_stopped_services_and_services_not_on_this_host() -> None:
    files = {"src/pages/motd.txt": 105.0, "src/beta/server.py": 105.0, "src/alpha/a.py": 50.0}
    plan = edit_rules.decide(files, {"alpha": 100.0}, {"beta": 101.0}, RULES)
    assert plan == {
        "restart": {},
        "stopped": {"beta": ["src/beta/server.py"]},
        "spared": {},
        "notes": [["read on every request", ["src/pages/motd.txt"]]],
    }
    # beta does not run on this host at all: its files mean nothing here
    assert edit_rules.decide({"src/beta/x.py": 105.0}, {"alpha": 100.0}, {}, RULES)["stopped"] == {}
    # a note is said once: the last look (at 106) saw it already
    assert edit_rules.decide(files, {"alpha": 100.0}, {}, RULES, looked=106.0)["notes"] == []


def test_what_a_process_imported_decides_for_python_files_and_the_paths_for_the_rest() -> None:
    files = {
        "src/common/web.py": 105.0,  # both paths say so; alpha's process imported it, beta's not
        "src/common/BUILD": 105.0,  # not Python: the paths decide
        "src/tools/x.py": 105.0,  # under no one's paths, but alpha's process imported it
        "src/beta/old.py": 90.0,  # not imported, and older than the process anyway
    }
    imports = {"alpha": {"src/common/web.py", "src/tools/x.py"}, "beta": {"src/beta/server.py"}}
    plan = edit_rules.decide(files, {"alpha": 100.0, "beta": 100.0}, {}, RULES, 0.0, imports)
    assert plan["restart"] == {
        "alpha": ["src/common/BUILD", "src/common/web.py", "src/tools/x.py"],
        "beta": ["src/common/BUILD"],
    }
    assert plan["spared"] == {"beta": ["src/common/web.py"]}
    # a service whose process has no record (yet): its paths decide everything, as before
    plan = edit_rules.decide(files, {"alpha": 100.0, "beta": 100.0}, {}, RULES, 0.0, {})
    assert plan["restart"]["beta"] == ["src/common/BUILD", "src/common/web.py"]
    assert plan["spared"] == {}


def test_the_import_chain_from_the_main_module_to_a_file(tmp_path: Path) -> None:
    """The static imports among the recorded modules, relative ones resolved, packages too."""
    files = {
        "src/app/server.py": "from .api import routes\nimport json\n",
        "src/app/__init__.py": "",
        "src/app/api/__init__.py": "",
        "src/app/api/routes.py": "def f():\n    from ..util import helpers\n",
        "src/app/util/__init__.py": "",
        "src/app/util/helpers.py": "import common.text\n",
        "src/common/__init__.py": "",
        "src/common/text.py": "X = 1\n",
        "src/common/late.py": "Y = 2\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    names = {rel: rel[4:-3].replace("/", ".").removesuffix(".__init__") for rel in files}
    rec = {"main": "app.server", "files": names}
    assert edit_imports.chain(str(tmp_path), rec, "src/common/text.py") == [
        "app.server",
        "app.api.routes",
        "app.util.helpers",
        "common.text",
    ]
    # imported, but by no import statement (importlib at run time): no chain to show
    assert edit_imports.chain(str(tmp_path), rec, "src/common/late.py") == []


def test_a_file_that_does_not_compile_keeps_the_services_it_would_restart() -> None:
    restart = {"alpha": ["src/alpha/x.py", "src/common/y.py"], "beta": ["src/common/y.py"]}
    assert edit_rules.blocked(restart, {"src/alpha/x.py": [3, "SyntaxError: invalid syntax"]}) == {
        "alpha": ["src/alpha/x.py"]
    }


def test_describe_says_what_restarted_why_and_what_was_kept() -> None:
    report = {
        "restarted": [
            {"service": "alpha", "ok": True, "seconds": 0.42, "files": ["a", "b", "c", "d"]},
            {
                "service": "beta",
                "ok": False,
                "seconds": 1.0,
                "files": ["b"],
                "error": "it crashed on start (FATAL); the last lines of its log:",
                "log": "Traceback\nNameError: x",
            },
        ],
        "kept": [
            {
                "service": "gamma",
                "pid": 7,
                "errors": [{"file": "g.py", "line": 4, "message": "SyntaxError: invalid syntax"}],
            }
        ],
        "stopped": [{"service": "delta", "files": ["d.py"]}],
        "notes": [{"note": "new sessions pick them up", "files": ["k.py"]}],
    }
    assert edit_report.describe(report, "vm") == [
        "alpha: restarted (a, b, c and 1 more changed), healthy in 0.4 s",
        "beta: restarted (b changed) and FAILED: it crashed on start (FATAL); the last lines of its log:",
        "    | Traceback",
        "    | NameError: x",
        "gamma: NOT restarted: g.py:4: SyntaxError: invalid syntax; the running process (pid 7) "
        "keeps serving",
        "delta: not started (d.py changed since it was stopped; `devkit start vm delta` starts it)",
        "note: k.py changed: new sessions pick them up",
    ]
    assert edit_report.describe({}, "vm") == [
        "nothing to restart: no service's files changed since it started"
    ]


def test_describe_says_how_each_restart_went_and_what_its_process_never_imported() -> None:
    report = {
        "restarted": [
            {"service": "api", "ok": True, "seconds": 2.31, "files": ["a.py"], "how": "overlapped"},
            {
                "service": "mgr",
                "ok": True,
                "seconds": 1.04,
                "files": ["a.py"],
                "how": "overlapped",
                "warm": True,
            },
            {
                "service": "agent",
                "ok": True,
                "seconds": 5.0,
                "files": ["a.py"],
                "how": "stopped first",
                "why": "it holds its session containers",
            },
            {
                "service": "web",
                "ok": False,
                "seconds": 1.2,
                "files": ["a.py"],
                "how": "overlapped",
                "error": "crashed on start (exit code 1); the old one (pid 9) keeps serving; the "
                "last lines of its log:",
                "log": "Traceback\nImportError: x",
            },
        ],
        "spared": [{"service": "storage", "files": ["a.py"]}],
    }
    assert edit_report.describe(report, "vm") == [
        "api: restarted (a.py changed), healthy in 2.3 s; the old process served until then",
        "mgr: restarted (a.py changed), healthy in 1.0 s (warm); the old process served until then",
        "agent: restarted (a.py changed), healthy in 5.0 s; stopped first: it holds its session "
        "containers",
        "web: NOT restarted (a.py changed): its new process crashed on start (exit code 1); the "
        "old one (pid 9) keeps serving; the last lines of its log:",
        "    | Traceback",
        "    | ImportError: x",
        "storage: not restarted for a.py: its process never imported it",
    ]
    would = {
        "would": [
            {"service": "api", "files": ["c.py"], "chain": {"file": "c.py", "modules": ["a", "c"]}},
            {"service": "web", "files": ["c.py"], "chain": {"file": "c.py", "modules": []}},
            {"service": "db", "files": ["d.py"], "chain": {"file": "d.py", "modules": ["d"]}},
        ]
    }
    assert edit_report.describe(would, "vm") == [
        "api: would restart (c.py changed)",
        "    c.py is imported: a -> c",
        "web: would restart (c.py changed)",
        "    c.py is imported at run time (no import statement leads there)",
        "db: would restart (d.py changed)",
        "    d.py is its main module (d)",
    ]


def test_the_edit_latency_summary_is_the_last_and_the_nearest_rank_percentiles() -> None:
    rows = [{"seconds": s, "how": "overlapped"} for s in (3.0, 1.0, 2.0, 4.0, 10.0)]
    assert edit_latency.summary(rows) == {
        "last": 10.0,
        "p50": 3.0,
        "p95": 10.0,
        "count": 5,
        "how": "overlapped",
    }
    assert edit_latency.summary([]) == {}
    assert edit_latency.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def _git(repo: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t")
    env.update(GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def test_candidates_come_from_git_and_leave_ignored_files_out(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src" / "a" / "__pycache__").mkdir(parents=True)
    (repo / "src" / "b").mkdir()
    (repo / ".gitignore").write_text("__pycache__/\n/dist/\n")
    (repo / "src" / "a" / "x.py").write_text("x = 1\n")
    (repo / "src" / "a" / "gone.py").write_text("")
    (repo / "src" / "b" / "all_gone.py").write_text("")
    (repo / "src" / "a" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "x")
    (repo / "src" / "a" / "new.py").write_text("")  # untracked: it counts
    (repo / "src" / "a" / "gone.py").unlink()  # tracked, deleted: counts from its folder
    (repo / "src" / "b" / "all_gone.py").unlink()  # its folder too: from the nearest one left
    (repo / "src" / "b").rmdir()
    (repo / "dist").mkdir()
    (repo / "dist" / "junk.py").write_text("")
    got = edit_checkout.candidates(str(repo), ["src/a", "src/b", "dist"])
    assert sorted(got) == ["src/a/gone.py", "src/a/new.py", "src/a/x.py", "src/b/all_gone.py"]
    assert got["src/a/gone.py"] == os.stat(repo / "src" / "a").st_mtime
    assert got["src/b/all_gone.py"] == os.stat(repo / "src").st_mtime
    # not a git checkout (and in none): every file but byte code and caches
    plain = tmp_path / "plain"
    (plain / "p" / "__pycache__").mkdir(parents=True)
    (plain / "p" / "m.py").write_text("")
    (plain / "p" / "n.pyc").write_text("")
    (plain / "p" / "__pycache__" / "m.pyc").write_text("")
    (plain / "top.py").write_text("")
    assert _git_fails(plain)
    assert sorted(edit_checkout.candidates(str(plain), ["p", "top.py"])) == ["p/m.py", "top.py"]


def _git_fails(d: Path) -> bool:
    return subprocess.run(["git", "-C", str(d), "rev-parse"], capture_output=True).returncode != 0


def test_syntax_errors_with_file_and_line_in_process_and_under_another_interpreter(
    tmp_path: Path,
) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "bad.py").write_text("x = 1\ndef (:\n")
    want = {"bad.py": [2, "SyntaxError: invalid syntax"]}
    assert edit_checkout.syntax_errors(str(tmp_path), ["ok.py", "bad.py", "gone.py"], "") == want
    # another interpreter (a venv's python links to this one, so a wrapper): checked in a
    # process of its own, which leaves a note of having run
    other = tmp_path / "python"
    ran = tmp_path / "ran"
    other.write_text(f'#!/bin/sh\ntouch {ran}\nexec {sys.executable} "$@"\n')
    other.chmod(0o755)
    assert edit_checkout.syntax_errors(str(tmp_path), ["ok.py", "bad.py"], str(other)) == want
    assert ran.exists()
    # one that answers nothing readable: no errors claimed
    other.write_text("#!/bin/sh\necho not json\n")
    assert edit_checkout.syntax_errors(str(tmp_path), ["bad.py"], str(other)) == {}


@pytest.mark.parametrize("kind", [edit_watch.Inotify, edit_watch.Poll])
def test_a_save_wakes_the_watcher_and_byte_code_does_not(tmp_path: Path, kind: type) -> None:
    (tmp_path / "src" / "a" / "deep").mkdir(parents=True)
    w = (
        kind(str(tmp_path), ["src/a"])
        if kind is edit_watch.Inotify
        else kind(str(tmp_path), ["src/a"], 0.05)
    )
    assert not w.wait(0.2)
    (tmp_path / "src" / "a" / "__pycache__").mkdir()
    (tmp_path / "src" / "a" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "src" / "a" / "x.pyc").write_bytes(b"x")
    assert not w.wait(0.3)
    threading.Timer(0.1, (tmp_path / "src" / "a" / "deep" / "m.py").write_text, ["x\n"]).start()
    t0 = time.monotonic()
    assert w.wait(5)
    assert time.monotonic() - t0 < 2
    # a folder made after the watcher started is watched too
    (tmp_path / "src" / "a" / "later").mkdir()
    w.wait(0.3)
    (tmp_path / "src" / "a" / "later" / "n.py").write_text("")
    assert w.wait(5)


def test_the_sync_refuses_exactly_the_host_edits_it_would_overwrite() -> None:
    edited = {"a.py": "M", "b.py": "M", "same.py": "M", "new.txt": "A"}
    pushed = {"a.py": "M", "same.py": "M", "c.py": "A"}
    differ = {"a.py", "b.py", "new.txt", "c.py"}  # same.py is the same on both sides
    assert host_push.classify(edited, pushed, differ) == (["a.py"], ["b.py", "new.txt"])


def test_the_refusal_lists_files_and_commits_and_says_how_to_resolve() -> None:
    err = gitpush.refusal(
        "vm",
        "/home/dev/project",
        {
            "conflicts": [["M", "src/a.py"], ["A", "src/n.py"]],
            "commits": [["1a2b3c4", "fix on the vm"]],
            "staged": [],
        },
    )
    assert err.message.splitlines() == [
        "vm: sync refused: it would overwrite work on vm in /home/dev/project:",
        "    src/a.py  (edited on vm)",
        "    src/n.py  (new on vm)",
        "  commit(s) on vm's branch that yours does not have:",
        "    1a2b3c4 fix on the vm",
        "  nothing was changed on vm or here",
    ]
    assert "devkit sync vm --save-host-edits" in err.hint


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"restart": {"app": ["../x"]}}, "edit.restart.app: '../x' is not a path inside"),
        ({"restart": {"app": ["/src"]}}, "edit.restart.app: '/src' is not a path inside"),
        ({"restart": {}}, "edit.restart: no service restarts for any path"),
        ({"restart": {"app": ["src"]}, "debounse": 1}, "edit.debounse: unknown key"),
        ({"restart": {"app": ["src"]}, "notes": [{"paths": ["x"]}]}, "edit.notes[0].note: missing"),
        ({"restart": {"app": ["src"]}, "overlap": {"app": 8080}}, "edit.overlap.app: expected"),
        ({"restart": {"app": ["src"]}, "stop_first": {"app": ""}}, "edit.stop_first.app: expected"),
    ],
)
def test_the_edit_group_is_validated_with_file_and_key(group: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        edit_kind.GROUP.parse(group, Where("stack.toml", "edit"), ())


def test_a_restart_rule_for_a_service_the_stack_does_not_have(tmp_path: Path) -> None:
    (tmp_path / "stack.toml").write_text(
        '[services.app.program]\ncommand = "true"\n[edit.restart]\napp = ["src"]\nweb = ["src"]\n'
    )
    with pytest.raises(ConfigError, match=r"edit\.restart\.web: no service 'web' in this stack"):
        load_stack(str(tmp_path))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[edit.overlap]\nweb = "8080"\n', r"edit\.overlap\.web: 'web' is not a service of"),
        ('[edit.stop_first]\nweb = "why"\n', r"edit\.stop_first\.web: 'web' is not a service"),
        (
            '[edit.overlap]\napp = "1"\n[edit.stop_first]\napp = "why"\n',
            r"edit\.stop_first\.app: 'app' is in \[edit\.overlap\] too",
        ),
        ("", r"edit\.warm: 'app' is not a service of \[edit\.overlap\]"),
    ],
)
def test_overlap_and_stop_first_name_services_of_the_restart_table(
    tmp_path: Path, extra: str, message: str
) -> None:
    warm = "" if extra else 'warm = ["app"]\n'
    (tmp_path / "stack.toml").write_text(
        '[services.app.program]\ncommand = "true"\n[services.web.program]\ncommand = "true"\n'
        "[edit]\n" + warm + '[edit.restart]\napp = ["src"]\n' + extra
    )
    with pytest.raises(ConfigError, match=message):
        load_stack(str(tmp_path))


def test_each_restarted_service_runs_under_the_launcher_where_the_edit_loop_exists() -> None:
    s = load_stack(str(Path(__file__).parents[1] / "editloop" / "stack"))
    alpha = next(x for x in s.services if x.name == "alpha")
    assert alpha.program.command.startswith("/bin/sh -c ")
    assert " launch alpha {{ path('supervisor/edit.json') | q }} -- {{ source.python | q }}" in (
        alpha.program.command
    )
    assert "file:devkit-edit.py" in alpha.uses  # a new host side restarts it
    bai = load_stack("backend.ai")
    manager = next(x for x in bai.services if x.name == "manager")
    # only where the edit loop exists (source mode): the wheels run as they are
    assert manager.program.command.startswith("{% set w %}{{ backend_ai.from_source }}{% endset %}")
    postgres = next(x for x in bai.services if x.name == "postgres")  # not in [edit.restart]
    assert "launch" not in postgres.program.command


def test_the_watcher_is_a_service_of_the_stack_and_its_command_matches_the_host_line() -> None:
    s = load_stack(str(Path(__file__).parents[1] / "editloop" / "stack"))
    watcher = s.services[-1]
    assert watcher.name == edit_kind.WATCHER and watcher.program.priority == 999
    assert "{{ source.watch }}" in watcher.when
    assert edit_kind.watcher_line("/p y/python", "/b").endswith(
        "'/p y/python' /b/supervisor/devkit-edit.py /b/supervisor/edit.json"
    )


def test_status_shows_each_services_edit_to_serving_times_once_there_are_any() -> None:
    rows = [
        ServiceStatus("postgres", "RUNNING", 10, 3600, True),
        ServiceStatus(
            "manager",
            "RUNNING",
            4711,
            62,
            True,
            edit={"last": 2.31, "p50": 2.2, "p95": 3.04, "count": 12, "how": "overlapped"},
        ),
    ]
    out = io.StringIO()
    engine_report.status_table(rows, out)
    assert out.getvalue().splitlines() == [
        "  SERVICE      STATE         PID   UPTIME  HEALTH  EDIT→SERVING",
        "  postgres     RUNNING        10    1h00m  ok      -",
        "  manager      RUNNING      4711    1m02s  ok      2.3 s (p50 2.2, p95 3.0, 12 edits)",
    ]
    out = io.StringIO()
    engine_report.status_table(rows[:1], out)  # no edit yet: the table as it always was
    assert out.getvalue().splitlines()[0] == "  SERVICE      STATE         PID   UPTIME  HEALTH"


def test_a_crash_s_traceback_is_found_among_another_process_s_log_lines() -> None:
    lines = [
        "GET / 200",
        "Traceback (most recent call last):",
        '  File "server.py", line 3, in <module>',
        "    import broken",
        "ImportError: no",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "server.py", line 5, in <module>',
        "ModuleNotFoundError: No module named 'x'",
        *["GET / 200"] * 30,
    ]
    assert edit_services.traceback_in(lines) == lines[1:11]
    assert edit_services.traceback_in(["GET / 200"] * 3) == []
    # the old process's line between two of the traceback's (they share the log): left out
    mixed = [*lines[1:3], '127.0.0.1 - - [08/Dec/2026 00:31:11] "GET / HTTP/1.1" 200 -', *lines[3:]]
    assert edit_services.traceback_in(mixed) == lines[1:11]


def test_a_record_rewritten_for_the_interpreter_s_modules_alone_is_settled(tmp_path: Path) -> None:
    # a server imports the standard library's modules on its first request: its record is
    # written again, but the checkout's modules have not changed for a minute
    base, pid = str(tmp_path), os.getpid()
    path = Path(f"{edit_imports.imports_prefix(base, 'web')}.{pid}.json")
    path.parent.mkdir(parents=True)
    rec = {"main": "web.server", "files": {"src/web/server.py": "web.server"}, "others": ["json"]}
    path.write_text(json.dumps({**rec, "since": time.time() - 60}))
    assert edit_imports.recorded(base, "web", pid) == rec
    path.write_text(json.dumps({**rec, "since": time.time()}))  # they have just changed
    assert edit_imports.recorded(base, "web", pid) is None
