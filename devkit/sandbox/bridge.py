"""The bridge root's sandboxes share: one per state dir, a free 10.X.Y.0/24, this machine at .1.

Kernel object names are global, so they carry a tag derived from the state dir: test runs and users
never collide. The bridge has no uplink and this machine forwards nothing (ip_forward is never
touched): the sandboxes reach each other and this machine's address on it, nothing else.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from pathlib import Path

from devkit import proc
from devkit.errors import DevkitError


def tag(state: Path) -> str:
    return hashlib.sha1(str(state.resolve()).encode()).hexdigest()[:6]


def name(state: Path) -> str:
    return f"dkb{tag(state)}"


def check(r: proc.Result, what: str) -> None:
    if r.returncode != 0:
        raise DevkitError(f"sandbox: {what} failed: {r.err.strip() or r.out.strip()}")


def _subnet(state: Path) -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0-10.249.255.0 that no interface of this machine uses, seeded by the tag."""
    used = proc.run("ip", "-o", "-4", "addr", "show").out
    seed = int(tag(state), 16)
    for i in range(256):
        n = (seed + i * 7919) % (50 * 256)
        net = ipaddress.IPv4Network(f"10.{200 + n // 256}.{n % 256}.0/24")
        if f" 10.{200 + n // 256}.{n % 256}." not in used:
            return net
    raise DevkitError("sandbox: no free 10.200-249.x.0/24 subnet for the sandbox bridge")


def ensure(state: Path) -> tuple[str, ipaddress.IPv4Network]:
    """This state dir's bridge and subnet, created on first use."""
    info = state / "bridge.json"
    br = name(state)
    if info.is_file():
        net = ipaddress.IPv4Network(json.loads(info.read_text())["subnet"])
    else:
        proc.run("ip", "link", "del", br)  # stale from a removed state dir: re-address it
        net = _subnet(state)
        info.write_text(json.dumps({"bridge": br, "subnet": str(net)}))
    if proc.run("ip", "link", "show", br).returncode != 0:
        check(proc.run("ip", "link", "add", br, "type", "bridge"), "creating the bridge")
        check(proc.run("ip", "addr", "add", f"{net[1]}/24", "dev", br), "addressing the bridge")
        check(proc.run("ip", "link", "set", br, "up"), "bringing the bridge up")
    return br, net


def remove(state: Path) -> bool:
    """Remove the bridge; False when there was none."""
    if not (state / "bridge.json").exists():
        return False
    proc.run("ip", "link", "del", name(state))
    (state / "bridge.json").unlink()
    return True


def free_index(net: ipaddress.IPv4Network, taken: set[str]) -> int:
    for i in range(2, 250):
        if str(net[i]) not in taken:
            return i
    raise DevkitError(f"sandbox: no free address left on {net}", "Remove a sandbox first.")


def veth(state: Path, index: int) -> str:
    return f"dkv{tag(state)}{index}"
