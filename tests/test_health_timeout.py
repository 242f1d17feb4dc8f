"""A program that starts but does not pass its health check in time, under a real supervisord here
(the same shell script that runs on a host): it is started once more, with where its processes
waited noted in its log; still not healthy, devkit says so with the last lines of its log and where
each of its processes waits."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.provision.kinds import supervisor
from devkit.provision.stack.layout import Layout, program_conf_rel


@pytest.fixture
def lay() -> Iterator[Layout]:
    if shutil.which("ps") is None:
        pytest.skip("ps is not installed (procps): the report lists processes with it")
    base = Path(tempfile.mkdtemp(prefix="dk-health-"))
    lay = Layout(str(base))
    for rel in ("supervisor/programs", "logs", "run", "venvs/supervisor/bin"):
        (base / rel).mkdir(parents=True)
    py = Path(lay.supervisor_python)  # this venv's python, which has supervisor
    py.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    py.chmod(0o755)
    Path(lay.path(supervisor.SUPERVISOR_CONF)).write_text(supervisor.daemon_conf(lay, "t"))
    try:
        yield lay
    finally:
        subprocess.run(["sh", "-c", str(supervisor.shutdown(lay))], check=False, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def test_a_program_never_healthy_shows_its_log_and_where_its_processes_wait(
    lay: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a parent that says it started, then waits on a child that sleeps: healthy never
    script = "echo started up; sleep 300 & wait"
    p = supervisor.Program("stuck", f"/bin/sh -c '{script}'", {}, "", "", 10, 1, "TERM", 5)
    Path(lay.path(program_conf_rel("stuck"))).write_text(supervisor.program_conf(lay, p))
    monkeypatch.setattr(supervisor, "HEALTH_TIMEOUT", 3)
    start = supervisor.join([supervisor.start_daemon(lay), supervisor.start(lay, "stuck", "false")])
    r = subprocess.run(["sh", "-c", str(start)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "stuck is not healthy after 3 s, started twice; the last lines of its log:"
    assert "started up" in lines
    at = lines.index("its processes (pid, threads, state, waiting in, command):")
    procs = [ln.split(None, 4) for ln in lines[at + 1 :]]
    assert [ps[4] for ps in procs] == ["/bin/sh -c " + script, "sleep 300"], procs
    assert all(ps[1] == "1" and ps[2].startswith("S") and ps[3] != "-" for ps in procs), procs
    log = Path(lay.log("stuck")).read_text()  # both starts' output, the note between them
    note = "devkit: stuck was not healthy 3 s after it started; starting it once more."
    assert log.splitlines().count("started up") == 2 and note in log.split("started up\n")[1], log


def test_a_program_that_hangs_on_its_first_start_is_healthy_after_the_second(
    lay: Layout, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the first start hangs (no marker yet); the second finds the marker and serves
    marker, ready = tmp_path / "tried", tmp_path / "ready"
    script = (
        f"if [ -e {marker} ]; then touch {ready}; exec sleep 300; fi; touch {marker}; sleep 300"
    )
    p = supervisor.Program("flaky", f"/bin/sh -c '{script}'", {}, "", "", 10, 1, "TERM", 5)
    Path(lay.path(program_conf_rel("flaky"))).write_text(supervisor.program_conf(lay, p))
    monkeypatch.setattr(supervisor, "HEALTH_TIMEOUT", 3)
    start = supervisor.join(
        [supervisor.start_daemon(lay), supervisor.start(lay, "flaky", f"test -e {ready}")]
    )
    r = subprocess.run(["sh", "-c", str(start)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    log = Path(lay.log("flaky")).read_text()
    _, note, procs = log.partition(
        "devkit: flaky was not healthy 3 s after it started; starting it once more. Its processes"
        " (pid, threads, state, waiting in, command):\n"
    )
    assert note, log
    assert "sleep 300" in procs.splitlines()[1], log  # the first start's child, where it waited
