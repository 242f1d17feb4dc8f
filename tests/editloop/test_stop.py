"""A restart in the edit loop against a real supervisord: a server whose main process keeps
finishing up after its worker has ended (as Backend.AI's manager does, for seconds) is ended by the
restart once it outlived its worker; a single-process service is stopped as supervisord stops it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.provision.onhost.edit import services as edit_services

# a main process with one worker: on TERM the worker ends at once, the main process "finishes up"
# for 30 s, then writes a file that a restart which waited for it would let it write
SERVER = r"""
import os, signal, sys, time
done = sys.argv[1]
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    while True:
        time.sleep(1)
def finish(*a):
    os.waitpid(pid, 0)
    time.sleep(30)
    open(done, "w").write("finished\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, finish)
while True:
    time.sleep(1)
"""

CONF = """
[unix_http_server]
file={d}/supervisor.sock
[supervisord]
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
nodaemon=false
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:server]
command={py} {d}/server.py {d}/finished
startsecs=0
stopwaitsecs=60
stopasgroup=true
autostart=true
[program:plain]
command={py} -c "import time; time.sleep(3600)"
startsecs=0
autostart=true
"""


@pytest.fixture
def rpc(tmp_path: Path) -> Iterator[object]:
    (tmp_path / "server.py").write_text(SERVER)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(CONF.format(d=tmp_path, py=sys.executable))
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
    s = edit_services.supervisor(str(tmp_path / "supervisor.sock"))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                states = {p["name"]: p["statename"] for p in s.getAllProcessInfo()}
                pid = int(s.getProcessInfo("server")["pid"])
                if set(states.values()) == {"RUNNING"} and edit_services.children_of(pid):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        yield s
    finally:
        for (
            p
        ) in s.getAllProcessInfo():  # each program's group, workers too: no 30 s of finishing up
            if p["pid"]:
                os.killpg(p["pid"], 9)
        pid = int((tmp_path / "supervisord.pid").read_text())
        os.kill(pid, 15)
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.05)


def test_a_restart_ends_a_main_process_that_outlived_its_worker(rpc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = int(rpc.getProcessInfo("server")["pid"])
    [result] = edit_services.restart(rpc, ["server"], {}, str(tmp_path))
    assert result["ok"] and result["pid"] != old, result
    assert not Path(f"/proc/{old}").exists()
    assert not (tmp_path / "finished").exists()  # its 30 s of finishing up were cut short
    deadline = time.monotonic() + 10
    while not edit_services.children_of(int(result["pid"])):  # the new one forks its worker again
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_single_process_service_is_stopped_as_supervisord_stops_it(rpc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = int(rpc.getProcessInfo("plain")["pid"])
    [result] = edit_services.restart(rpc, ["plain"], {}, str(tmp_path))
    assert result["ok"] and result["pid"] != old, result
    assert int(rpc.getProcessInfo("server")["pid"])  # the other service untouched
