from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

# Ctrl-C is part of what the suite tests (the engine's and the CLI's), and a shell that starts a
# command in the background (`cmd &`, nohup) hands it SIGINT ignored, which Python then keeps and
# every child inherits: the tests' own interrupts would never arrive. Python's own handler again, so
# the suite behaves the same however it was started (children get SIGINT's default).
signal.signal(signal.SIGINT, signal.default_int_handler)

# In CI every suite must run: a skip there (no root, no sshd, no PostgreSQL, no fixture) would hide
# a suite that silently stopped running, so with DEVKIT_TEST_STRICT=1 a skip is reported as a failure.
STRICT = os.environ.get("DEVKIT_TEST_STRICT") == "1"

# property tests in CI are derandomized: the same examples every run, so a red CI is reproducible
# (new examples are explored locally, and on demand: see tests/test_proof.py)
settings.register_profile("ci", derandomize=True, deadline=None)
if STRICT:
    settings.load_profile("ci")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under DEVKIT_TEST_STRICT=1 (CI runs every suite): {reason}"


# The suite must leave the machine as it found it, even when a test fails or is interrupted: in CI
# (or with DEVKIT_LEAK_CHECK=1) what a session leaves behind fails the run. Off by default
# elsewhere, where other runs on the machine make their own namespaces and temp folders. Checked by
# the process that runs the session (with pytest-xdist, the controller: after every worker is done).
LEAK_CHECK = os.environ.get("DEVKIT_LEAK_CHECK", "1" if STRICT else "0") == "1"
_BEFORE = pytest.StashKey[object]()
_LEFT = pytest.StashKey[list]()
_LOCKS = pytest.StashKey[set]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_worker(session.config):
        return
    from tests.ssh.conftest import lock_dirs

    session.config.stash[_LOCKS] = lock_dirs()
    if LEAK_CHECK:
        from tests import leaks

        session.config.stash[_BEFORE] = leaks.snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _is_worker(config):
        # the worker's phase timings, for the controller to print (tests/e2e)
        from tests.e2e.checks import TIMINGS

        config.workeroutput["timings"] = list(TIMINGS)  # type: ignore[attr-defined]
        return
    if _LOCKS in config.stash:  # what the workers' drop_lock_dirs left for now
        from tests.ssh.conftest import drop_lock_dirs

        drop_lock_dirs(config.stash[_LOCKS])
    if _BEFORE not in config.stash:
        return
    from tests import leaks

    left = leaks.left_behind(config.stash[_BEFORE], leaks.snapshot())  # type: ignore[arg-type]
    if left:
        config.stash[_LEFT] = left
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    from tests.e2e.checks import TIMINGS

    TIMINGS.extend(getattr(node, "workeroutput", {}).get("timings", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.e2e.checks import TIMINGS

    for text in TIMINGS:
        terminalreporter.write_line(text)
    left = terminalreporter.config.stash.get(_LEFT, [])
    if left:
        terminalreporter.write_sep("=", "the test session left this behind", red=True)
        for line in left:
            terminalreporter.write_line("  " + line)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A repository on `main` with a conventional pyproject, a towncrier config and one commit."""
    r = Repo.init(tmp_path / "repo", tmp_path / "home")
    r.commit(
        "chore: initial commit",
        {
            "pyproject.toml": PYPROJECT_CONVENTIONAL,
            "changes/README.md": "fragments\n",
            "src/app.py": "print('hi')\n",
        },
    )
    return r
