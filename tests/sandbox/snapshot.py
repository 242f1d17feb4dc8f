"""What a sandbox must leave as it found it on this machine, read from the real thing.

`machine()` is a snapshot of everything the issue names (installed packages, mounts, network
namespaces, links, addresses, routes, iptables/nft rules, forwarding sysctls, /root's mode, the ssh
config, cgroups) as comparable text; `ours()` finds processes that belong to one test bed. Other
test runs may share this machine, so lines that name another devkit test bed (its bridge, veths,
namespaces, cgroups or temp dir) are dropped: only another bed's own objects, never a generic one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path

_TAGGED = re.compile(r"\b(?:dkb|dkv|dk|devkit-)([0-9a-f]{6})")
_BED_DIR = re.compile(r"/tmp/dk[a-z0-9]*-[A-Za-z0-9_]+")


def _out(*cmd: str) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return r.stdout if r.returncode == 0 else f"<{cmd[0]} failed: {r.stderr.strip()}>"


def _foreign(line: str, tag: str, bed: str) -> bool:
    if any(m.group(1) != tag for m in _TAGGED.finditer(line)):
        return True
    return any(not m.group(0).startswith(bed) for m in _BED_DIR.finditer(line))


def _lines(text: str, tag: str, bed: str) -> list[str]:
    return sorted(ln for ln in text.splitlines() if ln.strip() and not _foreign(ln, tag, bed))


def _mounts() -> str:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        out.append(f"{f[4]} {f[5]} {right}")  # mount point, options, type source super-options
    return "\n".join(out)


def _links() -> str:
    # names, flags and masters; not counters or the `@ifN` peer indexes of other runs' veths
    return "\n".join(
        re.sub(r"(link/\S+ \S+).*", r"\1", ln) for ln in _out("ip", "-o", "link").splitlines()
    )


def _sysctls() -> str:
    keys = [
        "net/ipv4/ip_forward",
        "net/ipv4/conf/all/forwarding",
        "net/ipv6/conf/all/forwarding",
        "net/ipv6/conf/all/disable_ipv6",
        "net/bridge/bridge-nf-call-iptables",
    ]
    out = []
    for k in keys:
        with contextlib.suppress(OSError):
            out.append(f"{k}={Path('/proc/sys', k).read_text().strip()}")
    return "\n".join(out)


def _cgroups() -> str:
    out = []
    for h in sorted(Path("/sys/fs/cgroup").iterdir()):
        if h.is_dir():
            out += [f"{h.name}/{c.name}" for c in h.iterdir() if c.is_dir()]
    return "\n".join(out)


def _file(path: Path) -> str:
    if not path.exists():
        return f"{path}: absent"
    st = path.stat()
    if path.is_dir():  # its entries: a file devkit created and failed to remove shows here
        return f"{path}: mode {st.st_mode:o} uid {st.st_uid}\n" + "\n".join(
            f"{path}/{p.name}" for p in sorted(path.iterdir())
        )
    return f"{path}: mode {st.st_mode:o} uid {st.st_uid}\n{path.read_text(errors='replace')}"


def machine(tag: str, bed: Path, ssh_config: Path) -> dict[str, list[str]]:
    """This machine's state, as sorted lines per aspect (lines of other test beds left out)."""
    b = str(bed)
    raw = {
        "packages": _out("dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Status}\n"),
        "mounts": _mounts(),
        "netns": _out("ip", "netns", "list")
        + "\n"
        + "\n".join(sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []),
        "links": _links(),
        "addresses": _out("ip", "-o", "addr"),
        "routes": _out("ip", "route") + _out("ip", "-6", "route"),
        "iptables": "".join(
            _out(tool, "-w", "-t", table, "-S")
            for tool in ("iptables", "ip6tables")
            for table in ("filter", "nat", "mangle", "raw")
        ),
        "nft": _out("nft", "list", "ruleset") if shutil.which("nft") else "<no nft>",
        "sysctls": _sysctls(),
        "root": f"/root mode {Path('/root').stat().st_mode:o}",
        "run_sshd": f"/run/sshd exists: {Path('/run/sshd').exists()}",
        "ssh_config": _file(ssh_config) + "\n" + _file(ssh_config.parent),
        "cgroups": _cgroups(),
    }
    return {k: _lines(v, tag, b) for k, v in raw.items()}


def diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {}
    for k in before:
        gone = sorted(set(before[k]) - set(after[k]))
        new = sorted(set(after[k]) - set(before[k]))
        if gone or new:
            out[k] = [f"- {x}" for x in gone] + [f"+ {x}" for x in new]
    return out


def ours(state: Path, bed: Path, namespaces: set[str], cgroup: str) -> list[str]:
    """Processes of one test bed: devkit's own (they carry its DEVKIT_STATE_DIR or name its temp
    dir), and everything in its sandboxes' namespaces or cgroups."""
    found = []
    marker = f"DEVKIT_STATE_DIR={state}".encode()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue  # exited, waiting for this machine's init to reap it
            cmdline = (p / "cmdline").read_bytes()
            mine = marker in (p / "environ").read_bytes() or str(bed).encode() in cmdline
            mine = mine or any(os.readlink(p / "ns" / n) in namespaces for n in ("pid", "net"))
            mine = mine or (cgroup in (p / "cgroup").read_text())
        except OSError:
            continue
        if mine and int(p.name) != os.getpid():
            found.append(p.name + " " + cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found
