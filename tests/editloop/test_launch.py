"""A restart under devkit's launcher against a real supervisord on this machine: the new process
starts beside the old one and takes over with no request refused; one that crashes leaves the old
one serving and says why; a port bound without SO_REUSEPORT is stopped first; each process
records what it imported from the checkout; a stop leaves no process behind.

The launcher runs as the shipped script in the test that counts refused requests (as root, in a
network namespace of its own, where net.ipv4.tcp_migrate_req can be set as on a host); the others
run it from the package, on this machine's loopback, as any user (and measured by coverage)."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from devkit.provision.onhost.edit import cli, imports, launch, procs
from devkit.provision.onhost.edit import report as edit_report
from devkit.provision.onhost.edit import services as edit_services
from devkit.provision.ssh import ship
from tests.editloop.conftest import free_port

# a small HTTP service that logs each request, started slowly (as a real server imports and
# connects first); with REUSE=1 its port is bound with SO_REUSEPORT; a file `broken` in its
# folder makes it fail on start
SERVER = r"""
import json, os, signal, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
here = os.path.dirname(os.path.abspath(__file__))
import greeting  # from src: PYTHONPATH
if os.path.exists(os.path.join(here, "broken")):
    raise ImportError("cannot import name 'missing' from 'greeting' (a broken edit)")
for hang in ("hang-once", "hang"):  # a start that hangs (once, or each time)
    if os.path.exists(os.path.join(here, hang)):
        if hang == "hang-once":
            os.unlink(os.path.join(here, hang))
        time.sleep(3600)
time.sleep(float(os.environ.get("SLOW", "0.6")))

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pid": os.getpid(), "greeting": greeting.TEXT}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = False  # a request in flight is answered before the process ends
    block_on_close = True
    def server_bind(self):
        if os.environ.get("REUSE") == "1":
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
print("serving on", sys.argv[1], flush=True)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
"""

CONF = """
[unix_http_server]
file={d}/run/supervisor.sock
[supervisord]
logfile={d}/logs/supervisord.log
pidfile={d}/run/supervisord.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:web]
command={launcher} {py} -m server {port}
environment=REUSE="{reuse}",PYTHONPATH="src"
directory={d}/checkout
startsecs=0
stopwaitsecs=10
stopasgroup=true
killasgroup=true
autostart=true
redirect_stderr=true
stdout_logfile={d}/logs/web.log
"""


class Host(NamedTuple):
    base: Path
    rpc: Any
    port: int
    netns: bool

    def run(self, fn: Callable[[], Any]) -> Any:
        """fn, run in the service's network namespace (if it has one of its own)."""
        if not self.netns:
            return fn()
        pid = int((self.base / "run" / "supervisord.pid").read_text())
        return _in_thread(fn, join_netns(pid))

    def get(self) -> dict[str, Any]:
        """The service's answer. Outside a namespace of its own, net.ipv4.tcp_migrate_req is
        the machine's (off by default): a request queued at a retired process is reset, so it is
        asked again; in one, the first answer counts."""
        deadline = time.monotonic() + (0 if self.netns else 5)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
                    return dict(json.loads(r.read()))
            except OSError:  # reset, maybe wrapped in a URLError
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def serving(self) -> int:
        """The pid of the process that serves, once it answers."""
        deadline = time.monotonic() + 30
        while True:
            pid = int(self.rpc.getProcessInfo("web")["pid"])
            rec = launch.serving(str(self.base), "web", pid)
            try:
                if rec is not None and self.get()["pid"] == rec["pid"]:
                    return int(rec["pid"])
            except OSError:
                pass
            assert time.monotonic() < deadline, "no process serves"
            time.sleep(0.05)

    def restart(
        self, overlap: bool = True, changed: tuple[str, ...] = (), health: str = ""
    ) -> dict[str, Any]:
        ports = {"web": self.port} if overlap else {}
        checks = {"web": health} if health else {}
        [r] = edit_services.restart(
            self.rpc, ["web"], checks, str(self.base), ports, {}, {"web": list(changed)}
        )
        return r

    def warm_ready(self) -> None:
        """Until the launcher's warm interpreter for the service is ready."""
        deadline = time.monotonic() + 60
        while not (launch.ask(str(self.base), "web", {"do": "status"})["warm"] or {}).get("ready"):
            assert time.monotonic() < deadline, "the warm interpreter never got ready"
            time.sleep(0.2)


def _start(d: Path, reuse: bool, warm: bool = False, shipped: bool = False) -> Host:
    for sub in ("run", "logs", "supervisor", "checkout/src"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "checkout" / "server.py").write_text(SERVER)
    (d / "checkout" / "src" / "greeting.py").write_text('TEXT = "hello"\n')
    (d / "supervisor" / "devkit-edit.py").write_text(ship.edit_script())
    rules = {"base": str(d), "checkout": str(d / "checkout"), "stopwait": {"web": 10}}
    if warm:
        rules["warm"] = ["web"]
    (d / "supervisor" / "edit.json").write_text(json.dumps(rules))
    # the launcher as the edit kind puts it in front of a service's command, or the same code
    # from the package
    script = f"-I -S {d}/supervisor/devkit-edit.py" if shipped else f"-m {cli.__name__}"
    launcher = f"{sys.executable} {script} launch web {d}/supervisor/edit.json --"
    port = free_port()
    conf = d / "supervisord.conf"
    conf.write_text(
        CONF.format(
            d=d, launcher=launcher, py=sys.executable, port=port, reuse="1" if reuse else "0"
        )
    )
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
    rpc = edit_services.supervisor(str(d / "run" / "supervisor.sock"))
    host = Host(d, rpc, port, shipped)
    deadline = time.monotonic() + 30
    while True:
        try:
            host.get()
            break
        except OSError:
            assert time.monotonic() < deadline, (d / "logs" / "web.log").read_text()
            time.sleep(0.05)
    return host


def _stop(host: Host) -> None:
    pidfile = host.base / "run" / "supervisord.pid"
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)  # supervisord stops its program (and the launcher its children)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.05)


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _in_thread(fn: Callable[[], Any], enter: Callable[[], None]) -> Any:
    """fn's result, run in a new thread after `enter` (its exception raised here)."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            enter()
            out.append(fn())
        except BaseException as exc:  # the test's failure, raised in the test's own thread
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


def new_netns() -> None:
    """This thread (and what it starts) in a network namespace of its own, loopback up and
    net.ipv4.tcp_migrate_req set as provisioning sets it on a host: this machine's own network
    settings stay as they are."""
    if _libc().unshare(0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    Path("/proc/sys/net/ipv4/tcp_migrate_req").write_text("1\n")


def join_netns(pid: int) -> Callable[[], None]:
    def enter() -> None:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if _libc().setns(fd, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    return enter


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Host]:
    """The service, its port bound with SO_REUSEPORT, under the launcher and supervisord."""
    host = _start(tmp_path, reuse=True)
    try:
        yield host
    finally:
        _stop(host)


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[Host]:
    """The same, under the shipped launcher and in a network namespace of its own (a test's body
    runs there: Host.run)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: a network namespace of its own")
    host: Host = _in_thread(lambda: _start(tmp_path, reuse=True, shipped=True), new_netns)
    try:
        yield host
    finally:
        _stop(host)


class Poller:
    """Asks the service every 10 ms from a thread; counts what failed."""

    def __init__(self, host: Host) -> None:
        self.host, self.ok, self.failed = host, 0, []  # type: ignore[var-annotated]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.host.get()
                self.ok += 1
            except OSError as exc:
                self.failed.append(repr(exc))
            time.sleep(0.01)

    def done(self) -> tuple[int, list[str]]:
        self.stop.set()
        self.thread.join()
        return self.ok, self.failed


def test_an_overlapped_restart_refuses_no_request_where_stop_then_start_does(
    shipped: Host,
) -> None:
    shipped.run(lambda: _overlap(shipped))


def _overlap(shared: Host) -> None:
    # stopped first, the service answers nothing while its new process starts
    poller = Poller(shared)
    r = shared.restart(overlap=False)
    shared.serving()
    ok, failed = poller.done()
    assert r["ok"] and r["how"] == "stopped first", r
    assert failed, "the poller saw no gap: it cannot tell an overlap from a stop"
    # overlapped: the new process starts beside the old one, which serves until it takes over
    old = shared.serving()
    (shared.base / "checkout" / "src" / "greeting.py").write_text('TEXT = "hi"\n')
    poller = Poller(shared)
    r = shared.restart()
    time.sleep(0.3)
    ok, failed = poller.done()
    assert r["ok"] and r["how"] == "overlapped" and r["old"] == old, r
    assert failed == [] and ok > 20, (ok, failed)
    assert r["pid"] == shared.serving() != old
    assert shared.get() == {"pid": r["pid"], "greeting": "hi"}
    deadline = time.monotonic() + 10
    while procs.alive(old):  # retired by its launcher
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_new_process_that_crashes_leaves_the_old_one_serving_and_says_why(
    shared: Host,
) -> None:
    shared.run(lambda: _crash(shared))


def _crash(shared: Host) -> None:
    old = shared.serving()
    (shared.base / "checkout" / "broken").write_text("")
    poller = Poller(shared)  # the old process logs each request, after the crash too
    r = shared.restart()
    poller.done()
    assert not r["ok"] and r["how"] == "overlapped", r
    assert r["error"].startswith(
        f"crashed on start (exit code 1); the old one (pid {old}) keeps"
    ), r
    assert "Traceback (most recent call last):" in r["log"]
    assert r["log"].rstrip().endswith("(a broken edit)"), r["log"]
    assert shared.serving() == old and shared.get()["pid"] == old
    assert shared.rpc.getProcessInfo("web")["statename"] == "RUNNING"
    (shared.base / "checkout" / "broken").unlink()
    r = shared.restart()
    assert r["ok"] and shared.get()["pid"] == r["pid"] != old


def test_a_port_bound_without_so_reuseport_is_stopped_first(tmp_path: Path) -> None:
    host = _start(tmp_path, reuse=False)

    def body() -> None:
        old = host.serving()
        r = host.restart()
        assert r["ok"] and r["how"] == "stopped first", r
        assert r["why"] == f"port {host.port} is bound without SO_REUSEPORT"
        assert host.serving() != old

    try:
        host.run(body)
    finally:
        _stop(host)


def test_each_process_records_what_it_imported_from_the_checkout(shared: Host) -> None:
    shared.run(lambda: _records(shared))


def _records(shared: Host) -> None:
    base, pid = str(shared.base), shared.serving()
    deadline = time.monotonic() + 10
    while (rec := imports.recorded(base, "web", pid)) is None:
        assert time.monotonic() < deadline, "no record of the process's imports"
        time.sleep(0.2)
    # the checkout's module it imported, by its file; nothing of the interpreter's own
    assert rec["files"] == {"src/greeting.py": "greeting", "server.py": "server"}
    assert "json" in rec["others"] and "http.server" in rec["others"]
    r = shared.restart()
    assert r["ok"]
    deadline = time.monotonic() + 10
    old = Path(f"{launch.imports_prefix(base, 'web')}.{pid}.json")
    while old.exists():  # the retired process's record goes with it
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_stopping_the_program_ends_every_process_of_it(shared: Host) -> None:
    shared.run(lambda: _stops(shared))


def _stops(shared: Host) -> None:
    launcher = int(shared.rpc.getProcessInfo("web")["pid"])
    child = shared.serving()
    shared.rpc.stopProcess("web", True)
    assert not procs.alive(launcher) and not procs.alive(child)
    assert not Path(launch.state_path(str(shared.base), "web")).exists()
    shared.rpc.startProcess("web", True)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert shared.get()["pid"] == shared.serving() != child
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_warm_start_serves_what_a_cold_start_of_the_same_code_serves(tmp_path: Path) -> None:
    """The new process forked from the warm interpreter answers as one started cold does; a
    warm interpreter that loaded a file saved since is not used (the restart starts cold) and
    the next one leaves that file out."""
    host = _start(tmp_path, reuse=True, warm=True)
    greeting = host.base / "checkout" / "src" / "greeting.py"

    def body() -> None:
        host.warm_ready()
        greeting.write_text('TEXT = "hi"\n')  # the warm interpreter had imported it
        r = host.restart(changed=("src/greeting.py",))
        assert r["ok"] and not r["warm"], r
        assert host.get() == {"pid": r["pid"], "greeting": "hi"}
        host.warm_ready()  # a new one, without greeting.py
        greeting.write_text('TEXT = "hey"\n')
        r = host.restart(changed=("src/greeting.py",))
        assert r["ok"] and r["warm"], r
        warm = host.get()
        assert warm == {"pid": r["pid"], "greeting": "hey"}
        r = host.restart(overlap=False)  # the same code, started cold
        host.serving()
        cold = host.get()
        assert cold["pid"] != warm["pid"] and {**cold, "pid": 0} == {**warm, "pid": 0}

    try:
        host.run(body)
    finally:
        _stop(host)


def test_a_new_process_that_hangs_is_looked_into_and_started_once_more(
    shared: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not serving in time, the new process's state and its threads' stacks go into the log,
    and another one is started; the old one serves throughout. Hung twice, it is given up on."""
    monkeypatch.setattr(edit_services, "HEALTH_TIMEOUT", 3.0)
    log = shared.base / "logs" / "web.log"
    old = shared.serving()
    (shared.base / "checkout" / "hang-once").write_text("")
    r = shared.restart()
    assert r["ok"] and r["started"] == 2 and r["pid"] == shared.serving() != old, r
    text = log.read_text()
    note = text.index("devkit: web's new process was not serving 3 s after it started; starting")
    after = text[note:]
    assert re.search(
        r"devkit:   pid \d+: \d thread\(s\), state S, waiting in \w+: .* -m server \d+", after
    )
    # its stack, written by the process itself on devkit's SIGUSR2
    assert "Current thread 0x" in after and 'server.py", line 12 in <module>' in after, after
    assert "its first start hung, so it was started again" in "\n".join(
        edit_report.describe({"restarted": [{**r, "files": ["x.py"]}]})
    )
    old = r["pid"]
    (shared.base / "checkout" / "hang").write_text("")
    r = shared.restart()
    assert not r["ok"] and r["error"].startswith(
        f"was not serving 3 s after it started, started twice, and was stopped; the old one "
        f"(pid {old}) keeps serving"
    ), r
    assert log.read_text().count("starting another") == 2
    assert "giving up" in log.read_text()
    assert shared.serving() == old and shared.get()["pid"] == old


def test_a_service_stopped_first_that_hangs_is_started_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edit_services, "HEALTH_TIMEOUT", 3.0)
    host = _start(tmp_path, reuse=False)
    try:
        old = host.serving()
        (host.base / "checkout" / "hang-once").write_text("")
        check = f"{sys.executable} -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:{host.port}/\")'"
        r = host.restart(health=check)
        assert r["ok"] and r["how"] == "stopped first" and r["started"] == 2, r
        assert host.serving() != old
        text = (host.base / "logs" / "web.log").read_text()
        assert "devkit: web was not healthy 3 s after it started; starting it again" in text
        assert "Current thread 0x" in text
    finally:
        _stop(host)
