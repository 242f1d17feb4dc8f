from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.gitrepo import PYPROJECT_CONVENTIONAL, Repo

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
# elsewhere, where other runs on the machine make their own namespaces and temp folders.
LEAK_CHECK = os.environ.get("DEVKIT_LEAK_CHECK", "1" if STRICT else "0") == "1"


@pytest.fixture(scope="session", autouse=True)
def machine_left_as_found() -> Iterator[None]:
    if not LEAK_CHECK:
        yield
        return
    from tests import leaks

    before = leaks.snapshot()
    yield
    left = leaks.left_behind(before, leaks.snapshot())
    if left:
        pytest.fail("the test session left this behind:\n  " + "\n  ".join(left), pytrace=False)


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
