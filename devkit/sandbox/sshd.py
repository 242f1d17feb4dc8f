"""Keys, sshd and ssh_config files of a sandbox, and waiting for its sshd to answer."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from devkit import proc
from devkit.errors import DevkitError
from devkit.sandbox.bridge import check
from devkit.sandbox.state import Sandbox

SSHD = "/usr/sbin/sshd"


def keys(d: Path) -> None:
    """The sandbox's host key and the client key devkit logs in with (kept across restarts)."""
    for key in ("host_ed25519", "client_key"):
        if not (d / key).exists():
            check(
                proc.run(
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"devkit-sandbox-{d.name}",
                    "-f",
                    str(d / key),
                ),
                "ssh-keygen",
            )
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    (d / "authorized_keys").chmod(0o644)


def host_config(d: Path, listen: str, port: int) -> None:
    """sshd_config for an sshd this machine runs (the netns and loopback modes)."""
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress {listen}\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n"
        "MaxStartups 100:30:200\nMaxSessions 50\nPrintMotd no\n"
    )


def client_files(s: Sandbox) -> None:
    """known_hosts with the sandbox's host key, and the ssh_config snippet devkit and `ssh` read."""
    host_key = (s.dir / "host_ed25519.pub").read_text().split()
    entry = s.address if s.port == 22 else f"[{s.address}]:{s.port}"
    (s.dir / "known_hosts").write_text(f"{entry} {host_key[0]} {host_key[1]}\n")
    (s.dir / "ssh_config").write_text(
        f"# devkit sandbox {s.name}: written by `devkit sandbox up`, removed by `devkit sandbox down`\n"
        f"Host {s.name}\n  HostName {s.address}\n  Port {s.port}\n  User {s.user}\n"
        f"  IdentityFile {s.dir}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {s.dir}/known_hosts\n"
        "  StrictHostKeyChecking yes\n"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5) as sock:
            sock.settimeout(2)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


# sshd writes its pid file once it listens: the sign it is up. A machine busy with other work took
# more than 10 s to get there, so the bounds are generous, and each says what it waits for
LISTEN_TIMEOUT = 90.0
BANNER_TIMEOUT = 30.0  # from listening to its first words (the kernel queues the connection)


def wait(
    address: str,
    port: int,
    gone: Callable[[], str | None],
    listening: Callable[[], int],
    timeout: float = LISTEN_TIMEOUT,
) -> int:
    """Until the sshd listens (`listening()` gives its pid once its pid file names it), then until
    it answers on address:port with its banner; returns its pid. `gone()` says why it never will."""
    deadline = time.monotonic() + timeout
    while not (pid := listening()):
        _check(gone)
        if time.monotonic() > deadline:
            raise DevkitError(
                f"sandbox: sshd for {address}:{port} did not start listening within "
                f"{timeout:.0f} s (it wrote no pid file)",
                "Is the machine very busy? Run `devkit sandbox up` again; its log is in the "
                "sandbox's state dir.",
            )
        time.sleep(0.05)
    deadline = time.monotonic() + BANNER_TIMEOUT
    while not answers(address, port):
        _check(gone)
        if time.monotonic() > deadline:
            raise DevkitError(
                f"sandbox: sshd on {address}:{port} (pid {pid}) listens but sent no banner "
                f"within {BANNER_TIMEOUT:.0f} s",
                "Is the machine very busy? Run `devkit sandbox up` again.",
            )
        time.sleep(0.05)
    return pid


def _check(gone: Callable[[], str | None]) -> None:
    why = gone()
    if why is not None:
        raise DevkitError(f"sandbox: sshd exited: {why}")
