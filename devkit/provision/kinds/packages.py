"""Distribution packages (apt): installed when missing, through sudo for a plain user."""

from __future__ import annotations

import os
import subprocess
from typing import Any, NamedTuple

from devkit.errors import RemoteError
from devkit.provision.kinds.base import (
    LATER,
    ApplyContext,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
    no_check,
    no_diff,
    no_finish,
    no_notes,
    no_refresh,
    no_steps,
)
from devkit.provision.onhost.facts import run
from devkit.provision.ssh.command import Command, privileged, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack.spec import Stack, all_packages, platform_of

NAME = "packages"


class PackageFacts(NamedTuple):
    installed: dict[str, bool]
    sudo: bool | None  # can the login user `sudo -n`? (asked only when something is missing)


def request(stack: Stack) -> list[str]:
    return all_packages(stack)


def collect(req: list[str], base: str) -> dict[str, Any]:  # runs on the host
    installed: dict[str, bool] = {}
    if req:
        try:
            p = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\n", *req],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            got = dict(line.split("\t", 1) for line in p.stdout.splitlines() if "\t" in line)
        except OSError:
            got = {}
        installed = {n: got.get(n) == "installed" for n in req}
    sudo = None
    if os.getuid() != 0 and not all(installed.values()):
        sudo = run(["sudo", "-n", "true"])[0] == 0
    return {"installed": installed, "sudo": sudo}


REMOTE = (collect,)


def parse(raw: Any) -> PackageFacts:
    return PackageFacts(dict(raw.get("installed") or {}), raw.get("sudo"))


def desired(b: Build) -> tuple[str, ...]:
    return tuple(all_packages(b.stack, platform_of(b.facts.host.os)))


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    have: PackageFacts = f.of(NAME)
    missing = tuple(p for p in d.of(NAME) if not have.installed.get(p))
    return [Op(NAME, "packages", "install", " ".join(missing), missing)] if missing else []


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    if not ctx.d.is_root and ctx.f.of(NAME).sudo is False:
        raise RemoteError(
            conn.name,
            op.id,
            f"sudo failed: installing {' '.join(op.item)} needs root",
            "sudo -n true",
            1,
            hint="Allow passwordless sudo for this user, or log in as root.",
        )
    conn.run(install(op.item, ctx.d.is_root), op.id)


def install(names: tuple[str, ...], is_root: bool) -> Command:
    """apt-get install (after an update when the lists are stale), through sudo for a plain user."""
    inst = sh(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends",
        *(q(n) for n in names),
    )
    return privileged(sh(inst, "|| {", "apt-get update -q &&", inst, "; }"), is_root)


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
refresh = no_refresh
check = no_check
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
