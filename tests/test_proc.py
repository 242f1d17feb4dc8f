"""The light spawn the hook paths use: both pipes drained, a missing program is a result."""

from __future__ import annotations

from devkit import proc


def test_quick_drains_a_chatty_stderr_while_reading_stdout() -> None:
    r = proc.quick("sh", "-c", "head -c 300000 /dev/zero >&2; echo out; exit 3")
    assert (r.returncode, r.stdout, len(r.stderr)) == (3, b"out\n", 300000)


def test_quick_reports_a_missing_program() -> None:
    r = proc.quick("devkit-no-such-program")
    assert r.returncode == 127 and "cannot run it" in r.err
