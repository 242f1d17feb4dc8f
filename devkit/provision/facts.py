"""Facts: what a host has, gathered by ONE remote script per host (remote_facts.py), parsed into a record."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, NamedTuple

from devkit.provision import stack as stk

SCRIPT = (Path(__file__).with_name("remote_facts.py")).read_text(encoding="utf-8")
# /usr/bin/python3 first: a login shell's python3 may be a pyenv shim that costs ~0.1 s per call
PYTHON = 'P=/usr/bin/python3; [ -x "$P" ] || P=python3; exec "$P" -I -S -c '


class Facts(NamedTuple):
    user: str
    uid: int
    home: str
    base: str
    os: dict[str, str]
    base_marker: str | None
    ancestors: dict[str, dict[str, str] | None]
    packages: dict[str, bool]
    dirs: dict[str, dict[str, str] | None]
    files: dict[str, dict[str, str] | None]
    secrets: dict[str, str]
    markers: list[str]
    venvs: dict[str, str | None]
    program_files: list[str]
    applied: dict[str, str]
    supervisor: dict[str, Any]
    health: dict[str, dict[str, Any]]
    sudo: bool | None
    python: str = "3"
    machine: str = "x86_64"
    marker_hashes: dict[str, str] | None = None  # init id -> what its marker holds
    listening: tuple[int, ...] = ()  # TCP ports something listens on (this host's netns)
    provisioned_ports: tuple[tuple[str, int], ...] = ()  # (service, port) as last provisioned
    docker: str = ""  # the host's own Docker engine (unix:// URL) when it answers, else ""


def supervisor_files(stack: stk.Stack) -> list[str]:
    return [
        "supervisor/supervisord.conf",
        *(f"supervisor/programs/{s.name}.conf" for s in stack.services),
    ]


def request(
    stack: stk.Stack, base: str, health: dict[str, str] | str | None = None
) -> dict[str, Any]:
    """What to ask the host about: everything the stack manages (paths are relative to the base dir)."""
    from devkit.provision import desired

    return {
        "base": base,
        "packages": stk.all_packages(stack),
        "dirs": [d.path for d in desired.builtin_dirs()] + [d.path for d in stk.all_dirs(stack)],
        "files": [f.dest for f in stk.all_files(stack)]
        + supervisor_files(stack)
        + [desired.SERVICES],
        "secrets": sorted(stack.secrets),
        "markers": [i.id for s in stack.services for i in s.init],
        "venvs": ["supervisor", *(v.name for v in stack.venvs)],
        "health": health or {},
    }


def command(req: dict[str, Any]) -> str:
    return PYTHON + shlex.quote(SCRIPT) + " " + shlex.quote(json.dumps(req))


def parse(output: str) -> Facts:
    """Parse the script's JSON; raises ValueError on garbage (the caller names the host)."""
    data = json.loads(output)
    f = Facts(**{k: data.get(k) for k in Facts._fields if k in data})
    return f._replace(
        marker_hashes=f.marker_hashes or {},
        listening=tuple(f.listening or ()),
        provisioned_ports=tuple((str(s), int(p)) for s, p in f.provisioned_ports or ()),
        docker=f.docker or "",
    )
