"""Sandbox hosts: a real sshd on this machine, no VM.

As root each sandbox is a network namespace with its own address on a bridge and its own sshd (so every
sandbox has its own port space); otherwise a loopback sshd on a free port running as the current user.
Keys, known_hosts and an ssh_config snippet live under <state dir>/sandbox/NAME/.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

from devkit import proc
from devkit.errors import DevkitError
from devkit.provision import paths

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
SSHD = "/usr/sbin/sshd"


class Sandbox(NamedTuple):
    name: str
    dir: Path
    mode: str  # "netns" or "loopback"
    address: str
    port: int
    user: str
    netns: str
    veth: str
    pid: int


class NewSandbox(NamedTuple):
    """What `up` would create, for a dry run that creates nothing."""

    user: str
    home: str
    what: str


def describe_new(name: str) -> NewSandbox:
    if os.geteuid() == 0:
        return NewSandbox("root", "/root", f"a network namespace `{name}` with its own sshd")
    return NewSandbox(_login(), str(Path.home()), "an sshd on a free loopback port, as you")


def root() -> Path:
    return paths.state_dir() / "sandbox"


def _tag() -> str:
    # names of kernel objects are global: derive them from the state dir so test runs never collide
    return hashlib.sha1(str(root().resolve()).encode()).hexdigest()[:6]


def _check(r: proc.Result, what: str) -> None:
    if r.returncode != 0:
        raise DevkitError(f"sandbox: {what} failed: {r.err.strip() or r.out.strip()}")


def alive(pid: int) -> bool:
    """Is `pid` a live sshd? (checks the command line, so a reused pid is not mistaken for ours)"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return b"sshd" in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


def load(name: str) -> Sandbox | None:
    try:
        data = json.loads((root() / name / "sandbox.json").read_text())
    except (OSError, ValueError):
        return None
    return Sandbox(**{**data, "dir": Path(data["dir"])})


def all_sandboxes() -> list[Sandbox]:
    return [s for p in sorted(root().glob("*/sandbox.json")) if (s := load(p.parent.name))]


def _bridge() -> tuple[str, ipaddress.IPv4Network]:
    """This state dir's bridge and subnet, created on first use (10.X.Y.0/24 not used by any interface)."""
    info = root() / "bridge.json"
    name = f"dkb{_tag()}"
    if info.is_file():
        net = ipaddress.IPv4Network(json.loads(info.read_text())["subnet"])
    else:
        proc.run("ip", "link", "del", name)  # stale from a removed state dir: re-address it
        used = proc.run("ip", "-o", "-4", "addr", "show").out
        seed = int(_tag(), 16)
        for i in range(256):
            n = (seed + i * 7919) % (50 * 256)
            net = ipaddress.IPv4Network(f"10.{200 + n // 256}.{n % 256}.0/24")
            if f" 10.{200 + n // 256}.{n % 256}." not in used:
                break
        info.write_text(json.dumps({"bridge": name, "subnet": str(net)}))
    if proc.run("ip", "link", "show", name).returncode != 0:
        _check(proc.run("ip", "link", "add", name, "type", "bridge"), "creating the bridge")
        _check(proc.run("ip", "addr", "add", f"{net[1]}/24", "dev", name), "addressing the bridge")
        _check(proc.run("ip", "link", "set", name, "up"), "bringing the bridge up")
    return name, net


def _keys(d: Path) -> None:
    for key in ("host_ed25519", "client_key"):
        if not (d / key).exists():
            _check(
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


def _sshd_config(d: Path, listen: str, port: int) -> None:
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress {listen}\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n"
        "MaxStartups 100:30:200\nMaxSessions 50\nPrintMotd no\n"
    )


def _client_files(s: Sandbox) -> None:
    host_key = (s.dir / "host_ed25519.pub").read_text().split()
    entry = s.address if s.port == 22 else f"[{s.address}]:{s.port}"
    (s.dir / "known_hosts").write_text(f"{entry} {host_key[0]} {host_key[1]}\n")
    (s.dir / "ssh_config").write_text(
        f"# devkit sandbox {s.name}: written by `devkit sandbox up`, removed by `devkit sandbox down`\n"
        f"Host {s.name}\n  HostName {s.address}\n  Port {s.port}\n  User {s.user}\n"
        f"  IdentityFile {s.dir}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {s.dir}/known_hosts\n"
        "  StrictHostKeyChecking yes\n"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(
    address: str, port: int, p: subprocess.Popen[bytes], log: Path, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise DevkitError(
                f"sandbox: sshd exited: {log.read_text(errors='replace').strip()[-300:]}"
            )
        try:
            with socket.create_connection((address, port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise DevkitError(f"sandbox: sshd on {address}:{port} did not answer within {timeout:.0f} s")


def _start_sshd(s: Sandbox) -> Sandbox:
    Path("/run/sshd").mkdir(exist_ok=True) if os.geteuid() == 0 else None  # sshd insists on it
    cmd = [SSHD, "-f", str(s.dir / "sshd_config"), "-D", "-e"]
    if s.netns:
        # nsenter joins the network namespace only: `ip netns exec` would also give sshd a private
        # mount namespace with a fresh /sys, hiding the cgroup mounts that dockerd needs, and would
        # hide every mount made inside the sandbox from this machine's mount table
        cmd = ["nsenter", f"--net=/run/netns/{s.netns}", *cmd]  # execs sshd: same pid
    log = s.dir / "sshd.log"
    with log.open("ab") as fh:
        p = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, start_new_session=True
        )
    _wait_port(s.address, s.port, p, log)
    # sshd's own pid file is the truth (`ip netns exec` may fork rather than exec)
    s = s._replace(pid=int((s.dir / "sshd.pid").read_text().strip()))
    (s.dir / "sandbox.json").write_text(json.dumps({**s._asdict(), "dir": str(s.dir)}))
    return s


def up(name: str) -> Sandbox:
    """Start sandbox `name` (idempotent: a running one is returned as is, a stopped one restarted)."""
    if not NAME_RE.match(name):
        raise DevkitError(
            f"sandbox name {name!r} is not valid", "Use lowercase letters, digits and -, up to 31."
        )
    if not Path(SSHD).exists():
        raise DevkitError(
            f"sandbox: {SSHD} not found", "Install openssh-server (apt-get install openssh-server)."
        )
    if re.search(r"\s", str(root())):
        raise DevkitError(
            f"sandbox: the state dir {root()} contains whitespace, which ssh_config cannot hold",
            "Set DEVKIT_STATE_DIR to a path without spaces.",
        )
    existing = load(name)
    if existing and alive(existing.pid):
        return existing
    d = root() / name
    d.mkdir(parents=True, exist_ok=True)
    _keys(d)
    if existing:
        s = existing
    elif os.geteuid() == 0:
        s = _create_netns(name, d)
    else:
        s = Sandbox(name, d, "loopback", "127.0.0.1", _free_port(), _login(), "", "", 0)
        _sshd_config(d, "127.0.0.1", s.port)
    if s.netns and proc.run("ip", "netns", "pids", s.netns).returncode != 0:
        s = _create_netns(name, d)
    _client_files(s)
    s = _start_sshd(s)
    ensure_include()
    return s


def _login() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _create_netns(name: str, d: Path) -> Sandbox:
    bridge, net = _bridge()
    taken = {s.address for s in all_sandboxes() if s.name != name}
    index = next(i for i in range(2, 250) if str(net[i]) not in taken)
    ns, veth = f"dk{_tag()}-{name}", f"dkv{_tag()}{index}"
    proc.run("ip", "netns", "del", ns)
    proc.run("ip", "link", "del", veth)
    _check(proc.run("ip", "netns", "add", ns), "ip netns add")
    _check(
        proc.run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns),
        "veth",
    )
    _check(proc.run("ip", "link", "set", veth, "master", bridge, "up"), "attaching the veth")
    _check(
        proc.run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{net[index]}/24", "dev", "eth0"),
        "address",
    )
    _check(proc.run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"), "eth0 up")
    _check(proc.run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"), "lo up")
    _sshd_config(d, "0.0.0.0", 22)
    return Sandbox(name, d, "netns", str(net[index]), 22, "root", ns, veth, 0)


def _kill(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            Path(f"/proc/{p}").exists() and not _zombie(p) for p in pids
        ):
            time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def down(name: str) -> None:
    """Stop sandbox `name` by pid (and, for a namespace, every process inside it) and remove it."""
    s = load(name)
    d = root() / name
    if s is None and not d.exists():
        raise DevkitError(
            f"no sandbox named {name!r}", "`devkit sandbox list` shows the sandboxes."
        )
    if s is not None:
        pids = [s.pid] if alive(s.pid) else []
        if s.netns:
            r = proc.run("ip", "netns", "pids", s.netns)
            pids += [int(p) for p in r.out.split() if p.isdigit()]
        _kill(sorted(set(pids)))
        if s.netns:
            proc.run("ip", "netns", "del", s.netns)
            proc.run("ip", "link", "del", s.veth)
    import shutil

    shutil.rmtree(d, ignore_errors=True)
    if not all_sandboxes() and (root() / "bridge.json").exists():
        proc.run("ip", "link", "del", f"dkb{_tag()}")
        (root() / "bridge.json").unlink()


def ensure_include() -> None:
    """Make the user's ssh_config Include the sandboxes' snippets, so plain `ssh NAME` works too."""
    cfg = paths.ssh_config_file()
    line = f"Include {root()}/*/ssh_config"
    text = cfg.read_text(encoding="utf-8") if cfg.exists() else ""
    if line in text:
        return
    cfg.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # an Include must come before the first Host block to apply to every host
    cfg.write_text(f"# added by devkit sandbox\n{line}\n\n{text}", encoding="utf-8")
    cfg.chmod(0o600)
