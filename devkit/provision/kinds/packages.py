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
    interrupted: str = ""  # why dpkg needs `dpkg --configure -a` first ("" when it does not)


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
    interrupted = dpkg_interrupted() if req else ""
    sudo = None
    if os.getuid() != 0 and (interrupted or not all(installed.values())):
        sudo = run(["sudo", "-n", "true"])[0] == 0
    return {"installed": installed, "sudo": sudo, "interrupted": interrupted}


def dpkg_interrupted() -> str:  # runs on the host
    """Why apt would refuse to run (a dpkg run cut short, by Ctrl-C say), "" when it would not: what
    dpkg's own check reads, its journal /var/lib/dpkg/updates, and packages it left half done."""
    try:
        journal = [n for n in os.listdir("/var/lib/dpkg/updates") if n.isdigit()]
    except OSError:
        journal = []
    if journal:
        return "dpkg was interrupted: its journal /var/lib/dpkg/updates is not empty"
    # the states `dpkg --configure -a` finishes
    half_done = ("unpacked", "half-configured", "triggers-awaited", "triggers-pending")
    half, name = [], ""
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Package: "):
                    name = line[9:].strip()
                elif line.startswith("Status: ") and line.split()[-1] in half_done:
                    half.append(name)
    except OSError:
        return ""
    if half:
        return f"dpkg left {len(half)} package(s) half configured: {' '.join(half[:5])}"
    return ""


REMOTE = (collect, dpkg_interrupted)


def parse(raw: Any) -> PackageFacts:
    return PackageFacts(
        dict(raw.get("installed") or {}), raw.get("sudo"), str(raw.get("interrupted") or "")
    )


def desired(b: Build) -> tuple[str, ...]:
    return tuple(all_packages(b.stack, platform_of(b.facts.host.os)))


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    have: PackageFacts = f.of(NAME)
    missing = tuple(p for p in d.of(NAME) if not have.installed.get(p))
    ops = [Op(NAME, "dpkg", "recover", have.interrupted, ())] if have.interrupted else []
    return ops + ([Op(NAME, "packages", "install", " ".join(missing), missing)] if missing else [])


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    if not ctx.d.is_root and ctx.f.of(NAME).sudo is False:
        what = (
            "finishing dpkg's interrupted run"
            if op.id == "dpkg"
            else f"installing {' '.join(op.item)}"
        )
        raise RemoteError(
            conn.name,
            op.id,
            f"sudo failed: {what} needs root",
            "sudo -n true",
            1,
            hint="Allow passwordless sudo for this user, or log in as root.",
        )
    if op.id == "dpkg":
        conn.run(recover(ctx.d.is_root), op.id)
        ctx.state.setdefault("notes", []).append(
            f"{conn.name}: {op.detail}; devkit ran `dpkg --configure -a` to finish it before "
            "installing anything"
        )
        return
    conn.run(install(op.item, ctx.d.is_root), op.id)


def recover(is_root: bool) -> Command:
    """Finish what an interrupted dpkg run left (apt refuses to run until this is done)."""
    return privileged(sh("DEBIAN_FRONTEND=noninteractive dpkg --configure -a"), is_root)


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
