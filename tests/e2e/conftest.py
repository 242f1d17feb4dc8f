"""The end-to-end suites' phase timings: `with phase("name"):` in a test records a phase's wall time;
each module's table is printed in pytest's terminal summary (shown even when output is captured)
and written to $DEVKIT_E2E_TIMINGS (default .cache/e2e-timings.txt), appended module by module."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMINGS: list[str] = []


@pytest.fixture(scope="module")
def phase(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Any]]:
    times: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            times.append((name, time.monotonic() - start))

    yield timed
    what = request.module.__name__.rpartition(".")[2]
    lines = ["", f"{what} phase timings (wall seconds):"]
    lines += [f"  {name:<52} {secs:7.1f}" for name, secs in times]
    lines.append(f"  {'total':<52} {sum(s for _, s in times):7.1f}")
    text = "\n".join(lines)
    TIMINGS.append(text)
    print(text)
    out = Path(os.environ.get("DEVKIT_E2E_TIMINGS", ROOT / ".cache" / "e2e-timings.txt"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(text.lstrip() + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for text in TIMINGS:
        terminalreporter.write_line(text)
