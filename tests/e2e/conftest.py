"""Prints the end-to-end phase timings in pytest's terminal summary (shown even when output is captured)."""

from __future__ import annotations

import pytest

TIMINGS: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for text in TIMINGS:
        terminalreporter.write_line(text)
