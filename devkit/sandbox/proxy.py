"""The forward proxy isolated sandboxes reach the package registries through (tinyproxy).

An isolated sandbox has no route off its bridge and this machine forwards nothing, so apt and pip
inside go through tinyproxy, which devkit runs on the bridge address only: it serves the bridge's
subnet and only the hosts of this machine's Debian mirrors and of PyPI (anything else gets
`403 Filtered`, and CONNECT only to port 443). One per state dir, started with the first isolated
sandbox and stopped with the last.
"""

from __future__ import annotations

import configparser
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from devkit.errors import DevkitError

PYPI_HOSTS = ("pypi.org", "files.pythonhosted.org")
PIP_CONFIGS = (
    "/etc/pip.conf",
    "/etc/xdg/pip/pip.conf",
    "~/.config/pip/pip.conf",
    "~/.pip/pip.conf",
)


def pip_indexes(files: tuple[str, ...] = PIP_CONFIGS) -> list[str]:
    """The http(s) package indexes this machine's pip is configured with (beyond PyPI's own)."""
    urls: list[str] = []
    for name in files:
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        with contextlib.suppress(OSError, configparser.Error):
            cp.read(os.path.expanduser(name))
        for section in ("global", "install"):
            for key in ("index-url", "extra-index-url"):
                urls += cp.get(section, key, fallback="").split()
    env = (
        os.environ.get("PIP_INDEX_URL", "").split()
        + os.environ.get("PIP_EXTRA_INDEX_URL", "").split()
    )
    return list(dict.fromkeys(u for u in env + urls if u.startswith(("http://", "https://"))))


def allowed_hosts(mirror_hosts: list[str], indexes: list[str]) -> list[str]:
    hosts = [*mirror_hosts, *PYPI_HOSTS, *(urlsplit(u).hostname or "" for u in indexes)]
    return sorted(set(hosts) - {""})


def filter_text(hosts: list[str]) -> str:
    return "".join(f"^{re.escape(h)}$\n" for h in hosts)


def config_text(d: Path, address: str, port: int, subnet: ipaddress.IPv4Network) -> str:
    return (
        "# devkit sandbox proxy: written by `devkit sandbox up`, removed with the last sandbox\n"
        "User nobody\nGroup nogroup\n"
        f"Listen {address}\nPort {port}\nAllow {subnet}\n"
        "Timeout 600\nMaxClients 100\nDisableViaHeader Yes\nLogLevel Notice\n"
        f'ConnectPort 443\nFilter "{d}/allow"\nFilterType ere\nFilterURLs Off\nFilterDefaultDeny Yes\n'
    )


def _alive(pid: int, conf: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"tinyproxy" in cmdline and str(conf).encode() in cmdline and state != "Z"


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _wait(address: str, port: int, p: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise DevkitError(
                f"sandbox: the proxy (tinyproxy) exited: {log.read_text(errors='replace').strip()[-300:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise DevkitError(f"sandbox: the proxy on {address}:{port} did not answer within 10 s")


def ensure(state: Path, address: str, subnet: ipaddress.IPv4Network, hosts: list[str]) -> int:
    """Start this state dir's proxy on the bridge address if it is not running; its port."""
    d = state / "proxy"
    conf, info = d / "tinyproxy.conf", d / "proxy.json"
    data = json.loads(info.read_text()) if info.is_file() else {}
    if data.get("address") == address and _alive(int(data.get("pid", 0)), conf):
        return int(data["port"])
    binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not Path(binary).exists():
        raise DevkitError(
            "sandbox: tinyproxy is not installed: isolated sandboxes reach apt and PyPI through it",
            "apt-get install tinyproxy (or run `bash .ci/setup`).",
        )
    d.mkdir(parents=True, exist_ok=True)
    port = int(data["port"]) if data.get("address") == address else _free_port(address)
    (d / "allow").write_text(filter_text(hosts))
    conf.write_text(config_text(d, address, port, subnet))
    log = d / "tinyproxy.log"
    with log.open("ab") as fh:
        # tinyproxy reads its config and allow-list as root, binds, then runs as nobody
        p = subprocess.Popen(
            [binary, "-d", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=fh,
            start_new_session=True,
        )
    _wait(address, port, p, log)
    info.write_text(json.dumps({"address": address, "port": port, "pid": p.pid, "hosts": hosts}))
    return port


def stop(state: Path) -> bool:
    """Stop the proxy and remove its folder; False when there was none."""
    d = state / "proxy"
    info = d / "proxy.json"
    if not d.is_dir():
        return False
    if info.is_file():
        pid = int(json.loads(info.read_text()).get("pid", 0))
        if _alive(pid, d / "tinyproxy.conf"):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while _alive(pid, d / "tinyproxy.conf") and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid, d / "tinyproxy.conf"):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # ours when this process started it
    shutil.rmtree(d, ignore_errors=True)
    return True
