"""The end-to-end suites' phase timings: `with phase("name"):` in a test records a phase's wall time;
each module's table is printed in pytest's terminal summary (tests/conftest.py; shown even when
output is captured) and written to .cache/<module>-timings.txt. A module may name its table with
its own `phase`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.checks import ROOT, phases


@pytest.fixture(scope="module")
def phase(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Any]]:
    what = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    with phases(f"{what} phase timings", ROOT / ".cache" / f"{what}-timings.txt") as timed:
        yield timed
