"""The hosts a run acts on: [tool.devkit.provision] and [tool.devkit.hosts] (per-host settings)
made into Targets, and the variables each host adds to its stack's (--set, per-host vars)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from devkit import schema as s
from devkit.conventions.suggest import did_you_mean
from devkit.errors import DevkitError
from devkit.provision.ssh.address import (
    ALIAS_RE,
    SANDBOX_NAME_RULE,
    parse_address,
    valid_sandbox_name,
)
from devkit.provision.stack import layout

DEFAULT_STACK = "backend.ai"


class Target(NamedTuple):
    """One host to act on: the name the user gave and everything needed to reach and provision it."""

    name: str
    address: str
    stack: str
    base_dir: str  # "" means the default under the login user's home
    vars: dict[str, Any]
    sandbox: bool = False
    role: str = ""  # in a cluster: "manager" or "agent"; "" for a host on its own
    with_agent: bool = True  # a manager host that runs an agent too
    common_vars: dict[str, Any] = {}  # [tool.devkit.provision.vars]: every host's, under its own


class ProvisionSettings(NamedTuple):
    stack: str
    hosts: tuple[str, ...]
    parallel: int
    connect_timeout: float
    command_timeout: float
    sandbox_name: str
    images: tuple[
        str, ...
    ] = ()  # registry images to pull instead of building (the stack's [images])
    manager: str = ""  # a cluster: the manager host; every other host runs only an agent
    manager_agent: bool = True  # the manager host runs an agent too


PROVISION = s.Table(
    s.Key(
        "stack", s.string(), DEFAULT_STACK, "the stack: a built-in name or a folder with stack.toml"
    ),
    s.Key(
        "hosts",
        s.strings(),
        (),
        "the hosts `devkit provision` acts on with none named (none: the sandbox host)",
    ),
    s.Key("parallel", s.integer(min=1), 8, "hosts provisioned at a time"),
    s.Key("connect_timeout", s.number(), 10.0, "seconds to wait for SSH"),
    s.Key("command_timeout", s.number(), 600.0, "seconds any one remote command may take"),
    s.Key(
        "images",
        s.strings(),
        (),
        "registry images every agent host pulls instead of the built kernel image (23.09 only)",
    ),
    s.Key(
        "manager",
        s.string(),
        "",
        "a cluster: the manager host; every other host runs only an agent",
    ),
    s.Key("manager_agent", s.boolean(), True, "the manager host runs an agent too"),
    s.Key(
        "vars",
        s.mapping(s.anything()),
        {},
        "stack variables for every host; a host's own `vars` win",
    ),
)


def _sandbox_name(value: Any, where: s.Where) -> str:
    """a sandbox's name: lowercase letters, digits and -, starting with a letter, up to 31."""
    if not isinstance(value, str) or not valid_sandbox_name(value):
        raise where.fail(f"{value!r} is not a sandbox name", f"Use {SANDBOX_NAME_RULE}.")
    return value


SANDBOX = s.Table(
    s.Key("name", _sandbox_name, "sandbox", "the sandbox host used when no host is named")
)


def _base_dir(value: Any, where: s.Where) -> str:
    """a folder of its own on the host: absolute or ~/..., not a system folder nor a home."""
    if not isinstance(value, str):
        raise where.fail(f"expected a string, got {value!r}")
    problem = layout.base_dir_problem(value) if value else ""
    if problem:
        raise where.fail(f"{value!r} {problem}", layout.BASE_DIR_HINT)
    return value


HOST = s.Table(
    s.Key("address", s.string(), "", "`[user@]host[:port]` (default: the table's name)"),
    s.Key("stack", s.string(), "", "this host's stack (default: `[tool.devkit.provision] stack`)"),
    s.Key(
        "base_dir",
        _base_dir,
        "",
        "where the stack's state lives on the host, `{host}` replaced by its name (default: "
        "/var/lib/devkit/STACK as root, else ~/.devkit/STACK; a sandbox's in a folder HOST/)",
    ),
    s.Key("vars", s.mapping(s.anything()), {}, "stack variables for this host"),
)


class HostsConfig(NamedTuple):
    """[tool.devkit]'s provisioning tables, validated once per command."""

    settings: ProvisionSettings
    tables: dict[str, dict[str, Any]]  # [tool.devkit.hosts.NAME], each validated
    common_vars: dict[str, Any]  # [tool.devkit.provision.vars]


def load(extra: dict[str, Any], source: str) -> HostsConfig:
    """[tool.devkit.provision], [tool.devkit.sandbox] and every [tool.devkit.hosts.NAME] table,
    checked in one pass (one line naming the key for the first thing wrong)."""
    where = s.Where(source, "tool.devkit")
    p = s.validate(PROVISION, extra.get("provision"), where.key("provision"))
    box = s.validate(SANDBOX, extra.get("sandbox"), where.key("sandbox"))
    settings = ProvisionSettings(
        p["stack"],
        p["hosts"],
        p["parallel"],
        p["connect_timeout"],
        p["command_timeout"],
        box["name"],
        p["images"],
        p["manager"],
        p["manager_agent"],
    )
    at = where.key("hosts")
    raw = s.validate(s.Table(), extra.get("hosts"), at, open=True)
    tables = {}
    for name, table in raw.items():
        if not ALIAS_RE.fullmatch(name):
            raise at.key(repr(name)).fail(
                "a host's name is an ssh_config alias: letters, digits, . _ -",
                "Put user@host:port in the table's `address`.",
            )
        tables[name] = s.validate(HOST, table, at.key(name))
        parse_address(tables[name]["address"] or name)
    return HostsConfig(settings, tables, p["vars"])


def provision_settings(extra: dict[str, Any], source: str) -> ProvisionSettings:
    return load(extra, source).settings


def target(name: str, config: HostsConfig, default_stack: str, sandbox: bool = False) -> Target:
    """The Target for a host name, with its [tool.devkit.hosts.NAME] table when it has one."""
    parse_address(name)
    cfg = config.tables.get(name) or s.validate(HOST, None, s.Where("", "tool.devkit.hosts"))
    return Target(
        name,
        cfg["address"] or name,
        cfg["stack"] or default_stack,
        cfg["base_dir"],
        cfg["vars"],
        sandbox,
        common_vars=config.common_vars,
    )


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
            known = sorted(_flat(base, path))
            given = _flat({k: v}, path)[0]  # the whole name given, down to its value
            guess = did_you_mean(given, known)
            raise DevkitError(
                f"{where}: unknown stack variable `{given}`",
                f"Did you mean `{guess}`?" if guess else f"The stack defines: {', '.join(known)}.",
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
