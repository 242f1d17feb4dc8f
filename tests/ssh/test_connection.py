"""SSHConnection against a real OpenSSH sshd on loopback, run as the current user (no root needed):
commands, output, exit codes, a timeout that kills the remote process group, Ctrl-C from another
thread, atomic writes with their mode, reads, host keys, and a lost connection."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from devkit.errors import RemoteError
from devkit.provision.ssh import client as ssh
from devkit.provision.ssh.command import q, sh
from devkit.provision.ssh.connection import CommandTimedOut, ConnectionLost, Interrupted

pytestmark = [pytest.mark.ssh]
SSHD = "/usr/sbin/sshd"


class Sshd(NamedTuple):
    dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not Path(SSHD).exists() or not shutil.which("ssh"):
        pytest.skip("openssh-server and openssh-client are not installed")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True
        )
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\nMaxSessions 50\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)
    p = subprocess.Popen(
        [SSHD, "-f", str(d / "sshd_config"), "-D", "-e"],
        stdout=subprocess.DEVNULL,
        stderr=(d / "sshd.log").open("wb"),
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    host_key = (d / "host.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (d / "config").write_text(
        f"Host box\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
        f"  IdentityFile {d}/client\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n"
        f"Host stranger\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
        f"  IdentityFile {d}/client\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/unknown\n"
    )
    env = {"DEVKIT_SSH_CONFIG": str(d / "config"), "DEVKIT_KNOWN_HOSTS": str(d / "known_default")}
    yield Sshd(d, port, p, env)
    p.terminate()
    p.wait(10)


@pytest.fixture
def conn(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> Iterator[ssh.SSHConnection]:
    for k, v in sshd.env.items():
        monkeypatch.setenv(k, v)
    c = ssh.connect("box", "box", ssh.REFUSE, 5, 20)
    yield c
    c.close()


def test_output_exit_code_and_quoting(conn: ssh.SSHConnection) -> None:
    r = conn.run(sh("printf", q("a 'b' $x"), "; echo err >&2; exit 3"), "t", check=False)
    assert (r.rc, r.stdout, r.stderr) == (3, "a 'b' $x", "err\n")
    with pytest.raises(RemoteError) as info:
        conn.run(sh("echo nope >&2; exit 4"), "op-x")
    assert (info.value.op, info.value.rc, info.value.stderr_tail) == ("op-x", 4, "nope")
    big = conn.run(
        sh("head -c 3000000 /dev/zero | tr '\\\\0' x; head -c 200000 /dev/zero >&2"), "t"
    )
    assert len(big.stdout) == 3_000_000 and len(big.stderr) == 200_000


def test_a_timeout_kills_the_remote_process_group(conn: ssh.SSHConnection, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    start = time.monotonic()
    with pytest.raises(CommandTimedOut, match="timed out after 2 s"):
        conn.run(sh("sleep 300 & echo $! >", q(str(pidfile)), "; wait"), "slow", timeout=2)
    assert time.monotonic() - start < 15
    child = int(pidfile.read_text())
    for _ in range(50):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child), "the command's child outlived its timeout"


def test_interrupt_from_another_thread_stops_the_command(
    conn: ssh.SSHConnection, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    threading.Timer(1.0, conn.interrupt).start()
    with pytest.raises(Interrupted):
        conn.run(sh("sleep 300 & echo $! >", q(str(pidfile)), "; wait"), "long")
    child = int(pidfile.read_text())
    for _ in range(50):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child)


def test_put_is_atomic_with_its_mode_and_get_reads_it(
    conn: ssh.SSHConnection, tmp_path: Path
) -> None:
    target = tmp_path / "d" / "secret"
    target.parent.mkdir()
    conn.put(str(target), b"s3cret\n", 0o600, "put")
    assert target.read_bytes() == b"s3cret\n" and target.stat().st_mode & 0o777 == 0o600
    assert conn.get(str(target)) == b"s3cret\n" and conn.get(str(tmp_path / "none")) is None
    assert list(target.parent.iterdir()) == [target]  # no temp file left
    with pytest.raises(RemoteError, match="cannot write"):
        conn.put(str(tmp_path / "missing-dir" / "f"), b"x", 0o644, "put")


def test_unknown_host_key_is_refused_unless_accepted(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in sshd.env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(
        RemoteError, match=r"unknown host key for \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:"
    ):
        ssh.connect("stranger", "stranger", ssh.REFUSE, 5, 20)
    assert not (sshd.dir / "unknown").exists()
    ssh.connect("stranger", "stranger", ssh.SESSION, 5, 20).close()  # a dry run: not recorded
    assert not (sshd.dir / "unknown").exists()
    c = ssh.connect("stranger", "stranger", ssh.RECORD, 5, 20)
    c.close()
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519" in (sshd.dir / "unknown").read_text()
    (sshd.dir / "unknown").unlink()


def test_a_dropped_connection_is_not_a_timeout(conn: ssh.SSHConnection) -> None:
    def cut() -> None:
        time.sleep(1)
        conn.cx.client.get_transport().sock.shutdown(socket.SHUT_RDWR)

    threading.Thread(target=cut, daemon=True).start()
    with pytest.raises(ConnectionLost):
        conn.run(sh("sleep 20"), "waiting")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sync_pushes_a_clone_with_its_uncommitted_work_and_never_over_a_host_edit(
    conn: ssh.SSHConnection, tmp_path: Path
) -> None:
    """`devkit sync`'s push over this connection: a branch and its uncommitted work into a new
    checkout, a second push moving it, and a push that would overwrite an edit made on the host
    refused with nothing changed on either side."""
    from devkit.provision.transfer import gitpush

    def git(repo: Path, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    clone, host = tmp_path / "clone", tmp_path / "host" / "checkout"
    clone.mkdir()
    git(clone, "init", "-q", "-b", "feature")
    (clone / "app.py").write_text("X = 1\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "feat: the app")
    (clone / "app.py").write_text("X = 2\n")  # uncommitted
    pushed = gitpush.push(conn, clone, str(host), init=True)
    assert (host / "app.py").read_text() == "X = 2\n" and pushed.commits == 1
    assert git(host, "symbolic-ref", "--short", "HEAD").strip() == "feature"
    assert any("1 uncommitted file(s)" in line for line in gitpush.describe(pushed, "box"))
    (clone / "new.py").write_text("Y = 1\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "feat: more")
    pushed = gitpush.push(conn, clone, str(host))
    assert (host / "new.py").read_text() == "Y = 1\n" and pushed.commits == 1
    (host / "app.py").write_text("X = 'edited on the host'\n")
    (clone / "app.py").write_text("X = 3\n")
    with pytest.raises(gitpush.SyncRefused) as refused:
        gitpush.push(conn, clone, str(host))
    assert "app.py" in refused.value.message
    assert (host / "app.py").read_text() == "X = 'edited on the host'\n"
    assert (clone / "app.py").read_text() == "X = 3\n"
