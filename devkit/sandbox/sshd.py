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


def wait(address: str, port: int, gone: Callable[[], str | None], timeout: float = 10.0) -> None:
    """Until an sshd answers on address:port with its banner; `gone()` says why it never will."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        why = gone()
        if why is not None:
            raise DevkitError(f"sandbox: sshd exited: {why}")
        if answers(address, port):
            return
        time.sleep(0.05)
    raise DevkitError(f"sandbox: sshd on {address}:{port} did not answer within {timeout:.0f} s")
