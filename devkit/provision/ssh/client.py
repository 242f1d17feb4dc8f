"""The Connection over SSH: Fabric for the connection (auth, ProxyJump gateways), host keys verified.

Options come from OpenSSH itself (`ssh -G`), so Include, Match, globs and top-level defaults mean what
they mean to `ssh`. Fabric installs paramiko's AutoAddPolicy and never loads known_hosts; we undo both
on every hop. An unknown key is refused (`REFUSE`), or accepted and recorded as OpenSSH's
StrictHostKeyChecking=accept-new does (`RECORD`), or accepted for this connection only (`SESSION`:
a dry run changes nothing, known_hosts included); a changed key is always refused.

Commands run on a paramiko channel of their own under `timeout` (coreutils), which puts them in a
process group of their own: on a timeout or on Ctrl-C the whole group is killed on the host, never
left running, and a timeout is told apart from a dropped connection by its exit code.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import select
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import NamedTuple, TextIO

import fabric
import paramiko

from devkit import paths, proc
from devkit.errors import DevkitError, RemoteError
from devkit.provision.ssh.address import parse_address
from devkit.provision.ssh.command import Command, q, sh
from devkit.provision.ssh.connection import (
    CommandTimedOut,
    ConnectionLost,
    Interrupted,
    Result,
    failed,
    tail,
)

_KNOWN_HOSTS_LOCK = threading.Lock()
REFUSE, RECORD, SESSION = "refuse", "record", "session"  # what to do with an unknown host key
KEEPALIVE = 15  # seconds between keepalives, so NAT and firewalls keep an idle session open
KILL_GRACE = 5  # after the timeout's TERM, KILL the process group this much later
SFTP_TIMEOUT = 120.0


class SSHOptions(NamedTuple):
    """What OpenSSH would use for one host (one hop)."""

    hostname: str
    user: str
    port: int
    identity_files: tuple[str, ...]
    identities_only: bool
    known_hosts: tuple[str, ...]
    proxy_jump: tuple[str, ...]  # hops in the order they are dialled


def fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def parse_ssh_g(text: str) -> SSHOptions:
    """The lines of `ssh -G` (lower-case keys, one value or a space-separated list)."""
    one: dict[str, str] = {}
    ids: list[str] = []
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        key = key.lower()
        if key == "identityfile":
            ids.append(value)
        elif key and key not in one:
            one[key] = value
    jump = one.get("proxyjump", "none")
    return SSHOptions(
        one.get("hostname", ""),
        one.get("user", ""),
        int(one.get("port", "22")),
        tuple(ids),
        one.get("identitiesonly", "no") == "yes",
        tuple(one.get("userknownhostsfile", "").split()),
        () if jump == "none" else tuple(h for h in jump.split(",") if h),
    )


def resolve(host: str, user: str = "", port: int | None = None) -> SSHOptions:
    """Ask OpenSSH (`ssh -G`) what it would use for host, with the user's ssh_config
    ($DEVKIT_SSH_CONFIG, else ssh's own defaults: ~/.ssh/config and /etc/ssh/ssh_config)."""
    cmd = ["ssh", "-G"]
    override = os.environ.get("DEVKIT_SSH_CONFIG")
    if override:
        cmd += ["-F", override if Path(override).exists() else "/dev/null"]
    if user:
        cmd += ["-l", user]
    if port:
        cmd += ["-p", str(port)]
    r = proc.run(*cmd, "--", host)
    if r.returncode == 127:
        raise DevkitError(
            "OpenSSH's `ssh` client is not installed: devkit reads ssh_config through `ssh -G`",
            "Install it (apt-get install openssh-client).",
        )
    if r.returncode != 0:
        where = override or "~/.ssh/config"
        raise DevkitError(
            f"{where}: ssh cannot read it for `{host}`: {tail(r.err, 1)}",
            "Fix the line ssh names (check it with `ssh -G HOST`).",
        )
    opts = parse_ssh_g(r.out)
    return opts._replace(
        hostname=opts.hostname or host,
        identity_files=tuple(
            p for p in (os.path.expanduser(x) for x in opts.identity_files) if Path(p).is_file()
        ),
        known_hosts=tuple(os.path.expanduser(x) for x in opts.known_hosts),
    )


class _Policy(paramiko.MissingHostKeyPolicy):
    def __init__(self, name: str, files: list[Path], unknown: str) -> None:
        self.name, self.files, self.unknown = name, files, unknown

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        fp = fingerprint(key)
        if self.unknown == REFUSE:
            raise RemoteError(
                self.name,
                "connect",
                f"unknown host key for {hostname} ({key.get_name()} {fp})",
                hint=f"Check the fingerprint out of band, then re-run with --accept-new-host-key to "
                f"record it in {self.files[0]}.",
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.unknown != RECORD:
            return
        target = self.files[0]
        with _KNOWN_HOSTS_LOCK:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def default_known_hosts(files: tuple[str, ...]) -> bool:
    """Is this ssh's built-in UserKnownHostsFile (none configured)?"""
    home = Path.home() / ".ssh"
    return not files or [Path(f) for f in files] == [home / "known_hosts", home / "known_hosts2"]


def _fabric(
    name: str, opts: SSHOptions, gateway: fabric.Connection | None, unknown: str, timeout: float
) -> fabric.Connection:
    cx = fabric.Connection(
        opts.hostname,
        user=opts.user or None,
        port=opts.port,
        config=fabric.Config(overrides={"load_ssh_configs": False}),
        gateway=gateway,
        connect_timeout=timeout,
        connect_kwargs={
            "key_filename": list(opts.identity_files),
            "look_for_keys": False,  # ssh -G lists the default keys; only those that exist are given
            "allow_agent": not opts.identities_only,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
        },
    )
    files = [Path(p) for p in opts.known_hosts]
    if default_known_hosts(opts.known_hosts):
        files = [paths.known_hosts_file()]  # ssh's default: devkit's ($DEVKIT_KNOWN_HOSTS) instead
    for f in files:
        if f.is_file():
            cx.client.load_host_keys(str(f))
    # load_host_keys() makes paramiko rewrite that file on close; we append ourselves instead
    cx.client._host_keys_filename = None
    cx.client.set_missing_host_key_policy(_Policy(name, files, unknown))
    return cx


def fabric_connection(
    name: str, address: str, unknown: str = REFUSE, timeout: float = 10.0
) -> fabric.Connection:
    """A Fabric connection for `[user@]host[:port]` or an alias, with every ProxyJump hop
    resolved and dialled in order (a first, then b, for `ProxyJump a,b`)."""
    a = parse_address(address)
    opts = resolve(a.host, a.user, a.port)
    gateway = None
    for hop in opts.proxy_jump:  # OpenSSH's syntax: [ssh://][user@]host[:port]
        h = parse_address(hop.removeprefix("ssh://"))
        gateway = _fabric(name, resolve(h.host, h.user, h.port), gateway, unknown, timeout)
    return _fabric(name, opts, gateway, unknown, timeout)


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


def guarded(cmd: Command, seconds: float, pidfile: str) -> Command:
    """CMD under `timeout` in a process group of its own, its pid recorded for interrupt()."""
    inner = sh(
        "timeout",
        "-k",
        str(KILL_GRACE),
        str(max(1, round(seconds))),
        "sh",
        "-c",
        q(cmd),
        "</dev/null",
    )
    return sh(
        inner,
        "& p=$!; echo $p >",
        q(pidfile),
        '; wait "$p"; rc=$?; rm -f',
        q(pidfile),
        '; exit "$rc"',
    )


class _Held:
    """A command kept running on its own channel; its stdin closes on release()."""

    def __init__(self, chan: paramiko.Channel, said: str) -> None:
        self.chan, self.said = chan, said

    def release(self) -> None:
        try:
            self.chan.shutdown_write()
            deadline = time.monotonic() + 5
            while not self.chan.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.02)
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the connection is gone: the host ended the command with the session
        finally:
            self.chan.close()


class SSHConnection:
    """One host over SSH: every failure a RemoteError naming the host and the op."""

    def __init__(self, name: str, cx: fabric.Connection, command_timeout: float) -> None:
        self.name, self.cx, self.timeout = name, cx, command_timeout
        self._running: dict[str, float] = {}  # pidfile -> start time, of the commands in flight
        self._interrupted = threading.Event()

    def open(self) -> None:
        try:
            self.cx.open()
            transport = self.cx.client.get_transport()
            if transport is not None:
                transport.set_keepalive(KEEPALIVE)
        except Exception as exc:
            raise describe(exc, self.name, self.cx) from None

    def _channel(self, op: str, cmd: Command) -> paramiko.Channel:
        try:
            transport = self.cx.client.get_transport()
            if transport is None or not transport.is_active():
                raise EOFError("the connection is closed")
            return transport.open_session()
        except Exception as exc:
            err = describe(exc, self.name, self.cx)
            raise ConnectionLost(
                self.name, op, f"connection lost: {err.detail}", cmd.shown()
            ) from None

    def run(
        self, cmd: Command, op: str, *, check: bool = True, timeout: float | None = None
    ) -> Result:
        seconds = timeout or self.timeout
        pidfile = f"/tmp/.devkit-{os.urandom(6).hex()}.pid"
        chan = self._channel(op, cmd)
        start = time.monotonic()
        self._running[pidfile] = start
        out, err = bytearray(), bytearray()
        try:
            chan.exec_command(str(guarded(cmd, seconds, pidfile)))
            # the host's own timeout ends the command; this one only catches a host gone silent
            deadline = start + seconds + KILL_GRACE + 30
            while True:
                select.select([chan], [], [], 0.1)
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                drained = not chan.recv_ready() and not chan.recv_stderr_ready()
                # the exit status may come before the last output: wait for EOF too
                if drained and (chan.closed or (chan.eof_received and chan.exit_status_ready())):
                    break
                if time.monotonic() > deadline:
                    raise ConnectionLost(
                        self.name,
                        op,
                        f"connection lost: the host stopped answering for {seconds:.0f} s",
                        cmd.shown(),
                    )
            rc = chan.recv_exit_status() if chan.exit_status_ready() else -1
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ConnectionLost(self.name, op, f"connection lost: {exc}", cmd.shown()) from None
        finally:
            self._running.pop(pidfile, None)
            chan.close()
        res = Result(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        elapsed = time.monotonic() - start
        if self._interrupted.is_set() and rc != 0:
            raise Interrupted(
                self.name, op, "interrupted (Ctrl-C); its processes were stopped", cmd.shown()
            )
        if rc in (124, 137) and elapsed >= seconds - 1:
            raise CommandTimedOut(
                self.name,
                op,
                f"timed out after {seconds:.0f} s; its processes were stopped",
                cmd.shown(),
                None,
                tail(res.stderr or res.stdout),
            )
        if rc < 0:
            raise ConnectionLost(
                self.name,
                op,
                "connection lost: the session ended without an exit status",
                cmd.shown(),
                None,
                tail(res.stderr),
            )
        if check and rc != 0:
            raise failed(self.name, op, cmd, res)
        return res

    def interrupt(self) -> None:
        """Stop every command in flight: TERM to each `timeout` (it signals its whole group)."""
        self._interrupted.set()
        files = list(self._running)
        if not files:
            return
        kill = " ".join(
            f'kill -TERM "$(cat {shlex.quote(f)} 2>/dev/null)" 2>/dev/null;' for f in files
        )
        try:
            chan = self.cx.client.get_transport().open_session()
            chan.settimeout(10)
            chan.exec_command(kill + " true")
            chan.recv_exit_status()
            chan.close()
        except Exception:
            pass  # the connection is gone: the host's own timeout ends the commands

    def hold(self, cmd: Command, op: str, ready: str, timeout: float) -> _Held:
        chan = self._channel(op, cmd)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            chan.exec_command(str(cmd))
            while ready.encode() not in out:
                select.select([chan], [], [], 0.1)
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if ready.encode() in out:
                    break
                if chan.exit_status_ready() and chan.eof_received:
                    rc = chan.recv_exit_status()
                    text = (err or out).decode("utf-8", "replace")
                    raise RemoteError(self.name, op, f"exit code {rc}", cmd.shown(), rc, tail(text))
                if time.monotonic() > deadline:
                    raise ConnectionLost(
                        self.name, op, f"no answer within {timeout:.0f} s", cmd.shown()
                    )
        except (OSError, EOFError, paramiko.SSHException) as exc:
            chan.close()
            raise ConnectionLost(self.name, op, f"connection lost: {exc}", cmd.shown()) from None
        except RemoteError:
            chan.close()
            raise
        said = out[: out.index(ready.encode())].decode("utf-8", "replace")
        return _Held(chan, said)

    def stream(self, cmd: Command, out: TextIO, pty: bool = False) -> int:
        r = self.cx.run(
            str(cmd),
            hide=False,
            warn=True,
            pty=pty,
            in_stream=False,
            out_stream=out,
            err_stream=out,
        )
        return int(r.exited)

    def _sftp(self) -> paramiko.SFTPClient:
        sftp = self.cx.sftp()
        sftp.get_channel().settimeout(SFTP_TIMEOUT)
        return sftp

    def put(self, path: str, data: bytes, mode: int, op: str, owner: str = "") -> None:
        tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.devkit-{os.urandom(4).hex()}"
        try:
            sftp = self._sftp()
            with sftp.open(tmp, "wx") as fh:
                fh.chmod(mode)
                fh.write(data)
            if owner:
                self.run(sh("chown", "--", q(owner + ":"), q(tmp)), op)
            sftp.posix_rename(tmp, path)
        except RemoteError:
            self._discard(tmp)
            raise
        except (TimeoutError, OSError, paramiko.SSHException, EOFError) as exc:
            self._discard(tmp)
            raise RemoteError(self.name, op, f"cannot write {path}: {exc}") from None

    def _discard(self, tmp: str) -> None:
        try:
            self._sftp().remove(tmp)
        except Exception:
            pass  # best effort: the connection may be gone; the next run ignores stray temp files

    def get(self, path: str) -> bytes | None:
        try:
            with self._sftp().open(path, "rb") as fh:
                return fh.read()
        except (OSError, paramiko.SSHException, EOFError):
            return None

    def close(self) -> None:
        try:
            self.cx.close()
        except Exception:
            pass


def connect(
    name: str, address: str, unknown: str, connect_timeout: float, command_timeout: float
) -> SSHConnection:
    """An open SSHConnection (raises RemoteError naming the host when it cannot log in)."""
    try:
        cx = fabric_connection(name, address, unknown, connect_timeout)
    except DevkitError as exc:
        raise RemoteError(name, "connect", exc.message, hint=exc.hint) from None
    conn = SSHConnection(name, cx, command_timeout)
    conn.open()
    return conn
