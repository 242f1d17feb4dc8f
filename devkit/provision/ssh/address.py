"""A host's address on the command line, in [tool.devkit.hosts] or in a ProxyJump hop:
`[user@]host[:port]` or an ssh_config alias, and the names devkit gives hosts (one parser for all)."""

from __future__ import annotations

import re
from typing import NamedTuple

from devkit.errors import DevkitError

# an alias or host name becomes a path (the sandboxes' state, {host} in a base dir), a git ref
# (devkit/host-edits/NAME) and ssh_config words: it never starts with `.` or `-` (so never `..`
# or an option); always fullmatch-ed (with match, `$` would let a trailing newline through)
ALIAS = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
ALIAS_RE = re.compile(ALIAS)
_HOST_RE = re.compile(
    rf"(?:(?P<user>{ALIAS})@)?(?P<host>\[[0-9A-Fa-f:.]+\]|{ALIAS})(?::(?P<port>[0-9]+))?"
)


class Address(NamedTuple):
    user: str
    host: str
    port: int | None


def parse_address(text: str) -> Address:
    """`[user@]host[:port]`; an alias is just a host. Raises DevkitError with the fix."""
    m = _HOST_RE.fullmatch(text)
    if not m:
        raise DevkitError(
            f"{text!r} is not a host: expected an ssh_config alias or [user@]host[:port]",
            "Examples: devbox, ubuntu@10.0.0.5, root@vm.example.org:2222.",
        )
    port = m["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise DevkitError(
            f"{text!r}: port {port} is out of range", "Use a port between 1 and 65535."
        )
    return Address(m["user"] or "", m["host"].strip("[]"), int(port) if port else None)


def check_alias(text: str, what: str) -> str:
    """A Host name devkit writes or makes a path of (`--alias`, a [tool.devkit.hosts] table)."""
    if not ALIAS_RE.fullmatch(text):
        raise DevkitError(
            f"{what} {text!r} is not a host alias: letters, digits, . _ - (not first: . -)",
            "Example: devbox, vm-1.",
        )
    return text


# a sandbox's name is a host name, a folder of devkit's state dir and part of a cgroup's and a
# network namespace's: never a path, `.`, `..`, empty or with a newline (fullmatch: `$` allows one)
SANDBOX_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
SANDBOX_NAME_RULE = "lowercase letters, digits and -, starting with a letter, up to 31"
SANDBOX_RESERVED = frozenset({"proxy"})  # the state dir's own folders beside the sandboxes'


def valid_sandbox_name(name: str) -> bool:
    return SANDBOX_NAME.fullmatch(name) is not None and name not in SANDBOX_RESERVED
