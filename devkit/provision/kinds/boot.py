"""Starting the stack at boot: where the host runs systemd (and devkit logs in as root), a unit per
base dir starts its supervisord, then every program in order (supervisor/start-all.sh). Elsewhere
nothing starts it, and `devkit status` says `devkit start` brings it back."""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple

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
from devkit.provision.onhost.facts import file_fact
from devkit.provision.ssh.command import join, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.render import UnsafeValue, one_line, unsafe
from devkit.provision.stack.spec import Stack

NAME = "boot"
UNITS = "/etc/systemd/system"


class DUnit(NamedTuple):
    name: str
    content: str


class BootFacts(NamedTuple):
    unit: str  # the unit's file name for this base dir
    sha256: str  # of the installed unit file, "" when absent
    enabled: bool


UNIT = "a systemd unit"


def _sd(value: str) -> str:
    """One word of a systemd unit's command line: double-quoted, with systemd's escapes ($ and %
    doubled)."""
    text = one_line(value, UNIT)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    return f'"{text}"'


def _sd_path(value: str) -> str:
    """A path setting (WorkingDirectory=, PIDFile=): never quoted, % doubled; a path ending in
    whitespace or a backslash (which the unit's parser strips, or joins with the next line) gets
    a /. that systemd drops again."""
    text = one_line(value, UNIT).replace("%", "%%")
    return text + "/." if text[-1:].isspace() or text.endswith("\\") else text


def _sd_text(value: str) -> str:
    """Free text (Description=): one line, % doubled, no backslash at its end."""
    return one_line(value, UNIT).replace("%", "%%").rstrip("\\")


def unit_name(base: str) -> str:
    return f"devkit-{hashlib.sha256(base.encode()).hexdigest()[:12]}.service"


def request(stack: Stack) -> dict[str, str]:
    return {"units": UNITS}


def collect(req: dict[str, str], base: str) -> dict[str, Any]:  # runs on the host
    name = "devkit-" + hashlib.sha256(base.encode()).hexdigest()[:12] + ".service"
    fact = file_fact(os.path.join(req["units"], name))
    wants = os.path.join(req["units"], "multi-user.target.wants", name)
    return {
        "unit": name,
        "sha256": (fact or {}).get("sha256", ""),
        "enabled": os.path.exists(wants),
    }


REMOTE = (collect,)


def parse(raw: Any) -> BootFacts:
    return BootFacts(
        str(raw.get("unit") or ""), str(raw.get("sha256") or ""), bool(raw.get("enabled"))
    )


def desired(b: Build) -> DUnit | None:
    host = b.facts.host
    if host.init != "systemd" or host.uid != 0:
        return None
    try:
        return _unit(b)
    except UnsafeValue as exc:
        raise unsafe(
            f"{UNITS}/{unit_name(b.layout.base)}", exc, b.render.blame(exc.value, exc.check)
        ) from None


def _unit(b: Build) -> DUnit:
    lay = b.layout
    py, conf = _sd(lay.supervisor_python), _sd(lay.path(layout.SUPERVISOR_CONF))
    content = (
        "# written by devkit: re-run `devkit provision` instead of editing\n"
        "[Unit]\n"
        f"Description={_sd_text(f'devkit stack {b.stack.name} at {lay.base}')}\n"
        "After=network-online.target\nWants=network-online.target\n\n"
        "[Service]\nType=forking\n"
        f"PIDFile={_sd_path(lay.path(layout.PIDFILE))}\n"
        f"WorkingDirectory={_sd_path(lay.base)}\n"
        # systemd takes no quote or backslash in a command's own path: the venv's python is an
        # argument of /usr/bin/env, where quoting works
        f"ExecStart=/usr/bin/env {py} -m supervisor.supervisord -c {conf}\n"
        f"ExecStartPost=/bin/sh {_sd(lay.path(layout.START_ALL))}\n"
        f"ExecStop=/usr/bin/env {py} -m supervisor.supervisorctl -c {conf} shutdown\n"
        "TimeoutStartSec=900\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    return DUnit(unit_name(lay.base), content)


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    unit: DUnit | None = d.of(NAME)
    have: BootFacts = f.of(NAME)
    if unit is None:
        return []
    if have.sha256 != hashlib.sha256(unit.content.encode()).hexdigest() or not have.enabled:
        action = "update" if have.sha256 else "create"
        return [
            Op(NAME, "boot", action, f"systemd unit {unit.name}: the stack starts at boot", unit)
        ]
    return []


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    unit: DUnit = op.item
    conn.put(f"{UNITS}/{unit.name}", unit.content.encode(), 0o644, op.id)
    conn.run(
        join([sh("systemctl daemon-reload"), sh("systemctl enable --quiet", q(unit.name))]), op.id
    )


def remove(f: Facts) -> list[Any]:
    """The commands that take the unit away again (teardown --purge)."""
    have: BootFacts = f.of(NAME)
    if not have.sha256:
        return []
    path = q(f"{UNITS}/{have.unit}")
    return [
        sh("systemctl disable --quiet", q(have.unit), "2>/dev/null || true"),
        sh("rm -f --", path, "&& systemctl daemon-reload"),
    ]


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
refresh = no_refresh
check = no_check
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
