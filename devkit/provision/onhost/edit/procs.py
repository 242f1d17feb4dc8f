"""Processes and their sockets, from /proc (Linux): when a process started, its children and
descendants, the TCP ports a process tree listens on, and whether a port's listeners share it
(SO_REUSEPORT). Used by the launcher and by a restart."""

from __future__ import annotations

import errno
import os
import socket
import time

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (state is [0], the parent [1])."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def started_at(pid: int) -> float | None:
    """When a process started, to the clock tick (from /proc)."""
    try:
        ticks = int(_stat(pid)[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - uptime + ticks / _TICKS


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return _stat(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def _parents() -> dict[int, int]:
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                out[int(d)] = int(_stat(int(d))[1])
            except (OSError, ValueError, IndexError):
                pass
    return out


def children_of(pid: int) -> set[int]:
    """The processes whose parent is pid."""
    return {p for p, parent in _parents().items() if parent == pid}


def tree(pid: int) -> set[int]:
    """pid and every process below it."""
    parents = _parents()
    out, todo = {pid}, [pid]
    while todo:
        top = todo.pop()
        for p, parent in parents.items():
            if parent == top and p not in out:
                out.add(p)
                todo.append(p)
    return out


def _listeners(port: int) -> dict[int, tuple[str, int]]:
    """socket inode -> (address, family) of every TCP socket listening on the port."""
    out = {}
    # this thread's network namespace (/proc/net is the process's first thread's)
    net = "/proc/thread-self/net" if os.path.exists("/proc/thread-self/net") else "/proc/net"
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            with open(f"{net}/{name}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10 or cols[3] != "0A":  # 0A: LISTEN
                continue
            addr, _, hexport = cols[1].partition(":")
            if int(hexport, 16) == port:
                out[int(cols[9])] = (_address(addr, family), family)
    return out


def _address(hexaddr: str, family: int) -> str:
    raw = bytes.fromhex(hexaddr)
    if family == socket.AF_INET:
        return socket.inet_ntop(family, raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]  # four host-order 32-bit words
    return socket.inet_ntop(family, b"".join(words))


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def listening(pids: set[int], port: int) -> bool:
    """Some process of pids holds a socket listening on the TCP port."""
    inodes = set(_listeners(port))
    return bool(inodes) and any(_socket_inodes(p) & inodes for p in pids)


def unshared(port: int) -> str:
    """Why a second listener could not join the port's listeners ("" when it could): a socket
    bound with SO_REUSEPORT to each listening address fails when a listener there has no
    SO_REUSEPORT (or is another user's). It is bound, never listens, and is closed at once: no
    connection ever reaches it."""
    for addr, family in sorted(set(_listeners(port).values())):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((addr, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return f"port {port} is bound without SO_REUSEPORT"
            return f"port {port}: {exc.strerror}"
        finally:
            s.close()
    return ""


def catches(pid: int, signum: int) -> bool:
    """The process has a handler of its own for the signal (/proc's SigCgt)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            caught = next(ln.split()[1] for ln in f if ln.startswith("SigCgt:"))
        return bool(int(caught, 16) >> (signum - 1) & 1)
    except (OSError, StopIteration, ValueError, IndexError):
        return False


def described(pid: int) -> str:
    """One line of what a process is doing, as `ps` would say it: its threads, its state, the
    kernel function it waits in, and its command."""
    try:
        with open(f"/proc/{pid}/status") as f:
            threads = next((ln.split()[1] for ln in f if ln.startswith("Threads:")), "?")
        state = _stat(pid)[0]
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read().strip() or "-"
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except (OSError, IndexError):
        return f"pid {pid}: gone"
    return f"pid {pid}: {threads} thread(s), state {state}, waiting in {wchan}: {cmd}"
