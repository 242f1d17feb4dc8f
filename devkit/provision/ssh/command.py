"""Remote commands as structures that quote and mask themselves (after pyinfra's StringCommand).

A `Command` is a sequence of parts joined by spaces: a plain `str` is shell syntax written by devkit
or by a stack author (already quoted by the template's `q` filter); a value that comes from anywhere
else is wrapped in `Quoted` (shell-quoted when rendered) or `Secret` (quoted when run, `********` when
shown). `str(cmd)` is what the host runs; `cmd.shown()` is what people see in errors and plans.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import NamedTuple, Union

MASK = "********"
# how devkit runs the code it ships to a host (onhost/): `sh(PYTHON, q(source), args...)`; /usr/bin/python3
# first: a login shell's python3 may be a pyenv shim that costs ~0.1 s per call
PYTHON = 'P=/usr/bin/python3; [ -x "$P" ] || P=python3; exec "$P" -I -S -c'


class Quoted(NamedTuple):
    value: str | Command


class Secret(NamedTuple):
    value: str


Part = Union[str, Quoted, Secret, "Command"]


class Command(NamedTuple):
    parts: tuple[Part, ...]
    sep: str = " "  # "" for `cat`: parts that form one shell word
    label: str = ""  # what people see instead of the whole command (an init step's own text)

    def __str__(self) -> str:
        return self.sep.join(_render(p, shown=False) for p in self.parts)

    def shown(self) -> str:
        return self.label or self.sep.join(_render(p, shown=True) for p in self.parts)

    def labelled(self, label: str) -> Command:
        return self._replace(label=label)


def _render(part: Part, shown: bool) -> str:
    if isinstance(part, Command):
        return part.shown() if shown else str(part)
    if isinstance(part, Quoted):
        inner = part.value
        text = (inner.shown() if shown else str(inner)) if isinstance(inner, Command) else inner
        return shlex.quote(text)
    if isinstance(part, Secret):
        return MASK if shown else shlex.quote(part.value)
    return part


def sh(*parts: Part) -> Command:
    return Command(tuple(parts))


def cat(*parts: Part) -> Command:
    """Parts written together as one shell word: `cat("NAME=", q(value))`."""
    return Command(tuple(parts), "")


def q(value: str | Command) -> Quoted:
    return Quoted(value)


def join(commands: Iterable[Command], sep: str = "&&") -> Command:
    """`a && b && c` (or another separator): each command grouped so the separator binds as written."""
    out: list[Part] = []
    for c in commands:
        if out:
            out.append(sep)
        out += ["{", c, ";", "}"]
    return Command(tuple(out)) if out else sh("true")


def shell(cmd: Command) -> Command:
    """`sh -c CMD`: one argument for programs that take a command line (runuser, sudo, timeout)."""
    return sh("sh", "-c", q(cmd))


def as_user(cmd: Command, user: str, login: str, is_root: bool) -> Command:
    """CMD as `user` when that is not the login user: runuser as root, else `sudo -n`."""
    if not user or user == login:
        return shell(cmd)
    if is_root:
        return sh("runuser", "-u", q(user), "--", *shell(cmd).parts)
    return sh("sudo", "-n", "-u", q(user), "--", *shell(cmd).parts)


def privileged(cmd: Command, is_root: bool) -> Command:
    return cmd if is_root else sh("sudo", "-n", *shell(cmd).parts)


def write_text(path: str, text: str) -> Command:
    """Write one line into path through a temp file and a rename (never a half-written file),
    readable by the login user and its group only."""
    tmp = f"{path}.devkit-tmp"
    return sh(
        "( umask 027 && printf",
        "'%s\\n'",
        q(text),
        ">",
        q(tmp),
        ") &&",
        "mv",
        "-f",
        "--",
        q(tmp),
        q(path),
    )
