"""SSH connections over Fabric with host keys verified: known_hosts loaded and RejectPolicy on every hop.

Fabric installs paramiko's AutoAddPolicy and never loads known_hosts; we undo both on the connection and
on each ProxyJump gateway. `accept_new` behaves like OpenSSH's StrictHostKeyChecking=accept-new: an
unknown key is recorded, a changed key is always refused.
"""

from __future__ import annotations

import base64
import fcntl
import glob
import hashlib
import os
import socket
import threading
from pathlib import Path
from typing import NamedTuple

import fabric
import invoke
import paramiko

from devkit.errors import RemoteError
from devkit.provision import paths

_KNOWN_HOSTS_LOCK = threading.Lock()


class Result(NamedTuple):
    rc: int
    stdout: str
    stderr: str


def fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _expand_includes(text: str, depth: int = 0) -> str:
    out = []
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if depth < 8 and len(words) == 2 and words[0].lower() == "include":
            for pattern in words[1].split():
                pattern = os.path.expanduser(pattern)
                if not pattern.startswith("/"):
                    pattern = str(Path.home() / ".ssh" / pattern)
                for inc in sorted(glob.glob(pattern)):
                    out.append(
                        _expand_includes(
                            Path(inc).read_text(encoding="utf-8", errors="replace"), depth + 1
                        )
                    )
            continue
        out.append(line)
    return "\n".join(out)


def ssh_config() -> paramiko.SSHConfig:
    """The user's ssh_config with Includes expanded (paramiko ignores them), then devkit's sandboxes."""
    parts = []
    user = paths.ssh_config_file()
    if user.is_file():
        parts.append(_expand_includes(user.read_text(encoding="utf-8", errors="replace")))
    for snippet in sorted((paths.state_dir() / "sandbox").glob("*/ssh_config")):
        parts.append(snippet.read_text(encoding="utf-8"))
    return paramiko.SSHConfig.from_text("\n".join(parts) + "\n")


class _Policy(paramiko.MissingHostKeyPolicy):
    def __init__(self, name: str, files: list[Path], accept_new: bool) -> None:
        self.name, self.files, self.accept_new = name, files, accept_new

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        fp = fingerprint(key)
        if not self.accept_new:
            raise RemoteError(
                self.name,
                "connect",
                f"unknown host key for {hostname} ({key.get_name()} {fp})",
                hint=f"Check the fingerprint out of band, then re-run with --accept-new-host-key to "
                f"record it in {self.files[0]}.",
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        target = self.files[0]
        with _KNOWN_HOSTS_LOCK:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def _harden(cx: fabric.Connection, name: str, accept_new: bool) -> None:
    while isinstance(cx, fabric.Connection):
        listed = cx.ssh_config.get("userknownhostsfile", "")
        files = [Path(os.path.expanduser(p)) for p in listed.split()] or [paths.known_hosts_file()]
        for f in files:
            if f.is_file():
                cx.client.load_host_keys(str(f))
        # load_host_keys() makes paramiko rewrite that file on close; we append ourselves instead
        cx.client._host_keys_filename = None
        cx.client.set_missing_host_key_policy(_Policy(name, files, accept_new))
        cx = cx.gateway


def connection(
    name: str, address: str, accept_new: bool = False, timeout: float = 10.0
) -> fabric.Connection:
    cfg = fabric.Config(ssh_config=ssh_config())
    cx = fabric.Connection(
        address,
        config=cfg,
        connect_timeout=timeout,
        connect_kwargs={"banner_timeout": timeout, "auth_timeout": timeout},
    )
    _harden(cx, name, accept_new)
    return cx


def describe(exc: BaseException, name: str, cx: fabric.Connection | None) -> RemoteError:
    """One line for a failure to reach or log in to a host."""
    where = f"{cx.user}@{cx.host}:{cx.port}" if cx is not None else name
    if isinstance(exc, RemoteError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        known = paths.known_hosts_file()
        return RemoteError(
            name,
            "connect",
            f"host key for {where} has CHANGED: the server offers "
            f"{fingerprint(exc.key)}, known_hosts has {fingerprint(exc.expected_key)}; refusing",
            hint=f"If the host was really re-installed, remove the old key (ssh-keygen -R "
            f"'{exc.hostname}' -f {known}) and connect again.",
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return RemoteError(
            name,
            "connect",
            f"login refused for {where}: {exc}",
            hint="Check User and IdentityFile for this host in your ssh_config (or ssh-add the key).",
        )
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RemoteError(
            name,
            "connect",
            f"cannot reach {where}: timed out",
            hint="Is the host up and the port right?",
        )
    if isinstance(exc, (paramiko.ssh_exception.NoValidConnectionsError, OSError, EOFError)):
        return RemoteError(
            name,
            "connect",
            f"cannot reach {where}: {exc}",
            hint="Is the host up and sshd listening?",
        )
    if isinstance(exc, paramiko.SSHException):
        return RemoteError(name, "connect", f"SSH failure with {where}: {exc}")
    return RemoteError(name, "connect", f"{type(exc).__name__}: {exc}")


class Remote:
    """One host's connection: commands, atomic file writes and reads, every failure a RemoteError."""

    def __init__(self, name: str, cx: fabric.Connection, command_timeout: float) -> None:
        self.name, self.cx, self.timeout = name, cx, command_timeout

    def open(self) -> None:
        try:
            self.cx.open()
        except Exception as exc:
            raise describe(exc, self.name, self.cx) from None

    def run(
        self, cmd: str, op: str, check: bool = True, timeout: float | None = None, display: str = ""
    ) -> Result:
        try:
            r = self.cx.run(
                cmd,
                hide=True,
                warn=True,
                pty=False,
                in_stream=False,
                timeout=timeout or self.timeout,
            )
        except invoke.exceptions.CommandTimedOut as exc:
            raise RemoteError(
                self.name, op, f"timed out after {exc.timeout} s", display or cmd, None
            ) from None
        except Exception as exc:
            err = describe(exc, self.name, self.cx)
            raise RemoteError(
                self.name, op, f"connection lost: {err.detail}", display or cmd, None
            ) from None
        if r.exited is None or r.exited < 0:
            # the channel closed without an exit status: sshd or the network went away mid-command
            raise RemoteError(
                self.name,
                op,
                "connection lost: the session ended without an exit status",
                display or cmd,
                None,
                tail(r.stderr),
            )
        res = Result(r.exited, r.stdout, r.stderr)
        if check and res.rc != 0:
            raise RemoteError(
                self.name,
                op,
                f"exit code {res.rc}",
                display or cmd,
                res.rc,
                tail(res.stderr or res.stdout),
            )
        return res

    def stream(self, cmd: str, out: object, pty: bool = False) -> int:
        r = self.cx.run(
            cmd, hide=False, warn=True, pty=pty, in_stream=False, out_stream=out, err_stream=out
        )
        return int(r.exited)

    def write(self, path: str, content: bytes, mode: int, op: str, owner: str = "") -> None:
        """temp file in the same directory, mode set before the data goes in, then rename over `path`."""
        tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.devkit-{os.urandom(4).hex()}"
        try:
            sftp = self.cx.sftp()
            with sftp.open(tmp, "wx") as fh:
                fh.chmod(mode)
                fh.write(content)
            if owner:
                import shlex

                self.run(f"chown -- {shlex.quote(owner)}: {shlex.quote(tmp)}", op)
            sftp.posix_rename(tmp, path)
        except RemoteError:
            self._discard(tmp)
            raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self._discard(tmp)
            raise RemoteError(self.name, op, f"cannot write {path}: {exc}") from None

    def _discard(self, tmp: str) -> None:
        try:
            self.cx.sftp().remove(tmp)
        except (
            Exception
        ):  # best effort: the connection may be gone; the next run ignores stray temp files
            pass

    def read(self, path: str) -> bytes | None:
        try:
            with self.cx.sftp().open(path, "rb") as fh:
                return fh.read()
        except OSError:
            return None

    def close(self) -> None:
        try:
            self.cx.close()
        except Exception:
            pass


def tail(text: str, lines: int = 22) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
