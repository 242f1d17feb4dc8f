"""Hosts: `[user@]host[:port]` or an ssh_config alias, plus per-host settings from [tool.devkit.hosts]."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from devkit.errors import ConfigError, DevkitError

DEFAULT_STACK = "backend.ai"

_HOST_RE = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d+))?$"
)


class Address(NamedTuple):
    user: str
    host: str
    port: int | None


class Target(NamedTuple):
    """One host to act on: the name the user gave and everything needed to reach and provision it."""

    name: str
    address: str
    stack: str
    base_dir: str  # "" means the default under the login user's home
    vars: dict[str, Any]
    sandbox: bool = False


class ProvisionSettings(NamedTuple):
    stack: str
    hosts: tuple[str, ...]
    parallel: int
    connect_timeout: float
    command_timeout: float
    sandbox_name: str


def parse_address(text: str) -> Address:
    """`[user@]host[:port]`; an alias is just a host. Raises DevkitError with the fix."""
    m = _HOST_RE.match(text)
    if not m:
        raise DevkitError(
            f"`{text}` is not a host: expected an ssh_config alias or [user@]host[:port]",
            "Examples: devbox, ubuntu@10.0.0.5, root@vm.example.org:2222.",
        )
    port = m["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise DevkitError(
            f"`{text}`: port {port} is out of range", "Use a port between 1 and 65535."
        )
    return Address(m["user"] or "", m["host"].strip("[]"), int(port) if port else None)


PROVISION_SCHEMA = {
    "stack": "str",
    "hosts": "strs",
    "parallel": "int",
    "connect_timeout": "number",
    "command_timeout": "number",
}
HOST_SCHEMA = {"address": "str", "stack": "str", "base_dir": "str", "vars": "table"}


def provision_settings(extra: dict[str, Any], source: str) -> ProvisionSettings:
    from devkit.sections import read_table

    p = read_table(
        extra.get("provision"),
        source,
        "tool.devkit.provision",
        PROVISION_SCHEMA,
        {
            "stack": DEFAULT_STACK,
            "hosts": (),
            "parallel": 8,
            "connect_timeout": 10.0,
            "command_timeout": 600.0,
        },
    )
    s = read_table(
        extra.get("sandbox"), source, "tool.devkit.sandbox", {"name": "str"}, {"name": "sandbox"}
    )
    return ProvisionSettings(
        p["stack"],
        tuple(p["hosts"]),
        p["parallel"],
        p["connect_timeout"],
        p["command_timeout"],
        s["name"],
    )


def target(
    name: str, extra: dict[str, Any], source: str, default_stack: str, sandbox: bool = False
) -> Target:
    """The Target for a host name, merging [tool.devkit.hosts.NAME] when present."""
    hosts = extra.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise ConfigError(source, "tool.devkit.hosts", "must be a table of host tables")
    from devkit.sections import read_table

    defaults = {"address": name, "stack": default_stack, "base_dir": "", "vars": {}}
    cfg = read_table(hosts.get(name), source, f"tool.devkit.hosts.{name}", HOST_SCHEMA, defaults)
    parse_address(cfg["address"])
    return Target(name, cfg["address"], cfg["stack"], cfg["base_dir"], cfg["vars"], sandbox)


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set a.b=c` pairs into a nested dict; values look like TOML scalars (int, bool) or are strings."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", name):
            raise DevkitError(
                f"--set {item!r}: expected NAME=VALUE with a dotted name",
                "Example: --set postgres.port=15432",
            )
        value: Any = raw
        if re.fullmatch(r"-?\d+", raw):
            value = int(raw)
        elif raw in ("true", "false"):
            value = raw == "true"
        node = out
        *parents, leaf = name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise DevkitError(f"--set {item!r}: `{p}` is set to a value and used as a table")
        node[leaf] = value
    return out


def merge(base: dict[str, Any], over: dict[str, Any], where: str, path: str = "") -> dict[str, Any]:
    """Deep-merge `over` into `base`; a name the stack does not define is an error (catches typos)."""
    out = dict(base)
    for k, v in over.items():
        full = f"{path}{k}"
        if k not in base:
            raise DevkitError(
                f"{where}: unknown stack variable `{full}`",
                f"The stack defines: {', '.join(sorted(_flat(base)))}.",
            )
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise DevkitError(f"{where}: `{full}` is a table of variables, not a value")
            out[k] = merge(base[k], v, where, full + ".")
        else:
            out[k] = v
    return out


def _flat(d: dict[str, Any], prefix: str = "") -> list[str]:
    names: list[str] = []
    for k, v in d.items():
        names.extend(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"])
    return names
