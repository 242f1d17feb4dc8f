"""The edit loop from this machine: restart what changed, show (or run) the watcher, open VS Code.

Every decision is made on the host by onhost/edit/ (shipped with the command, so it is always
this devkit's) from the rules the stack's last provision wrote there (supervisor/edit.json).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from typing import Any, NamedTuple, TextIO

from devkit.errors import DevkitError, RemoteError
from devkit.provision.engine import hosts
from devkit.provision.kinds import edit as edit_kind
from devkit.provision.kinds import supervisor
from devkit.provision.onhost.edit import report as edit_report
from devkit.provision.ssh import ship
from devkit.provision.ssh.command import PYTHON, join, q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import layout
from devkit.provision.stack.layout import Layout


class Place(NamedTuple):
    """A provisioned stack with an edit loop: where it is on the host, and its rules."""

    conn: Connection
    host: str
    base: str
    rules: dict[str, Any]

    @property
    def layout(self) -> Layout:
        return Layout(self.base)


def script() -> str:
    return ship.edit_script()


def request(target: hosts.Target, stack: str | None) -> dict[str, Any]:
    """Where to look for the stack on the host (what `devkit status` looks through)."""
    base = target.base_dir.replace("{host}", target.name) if target.base_dir else ""
    return {"base": base, "host": target.name, "stack": stack or ""}


def _run(conn: Connection, host: str, what: str, req: dict[str, Any]) -> dict[str, Any]:
    """The host side, shipped with the command (always this devkit's): one round trip."""
    cmd = sh(PYTHON, q(script()), what, q(json.dumps(req))).labelled(f"<devkit-edit.py {what}>")
    res = conn.run(cmd, what, check=False)
    try:
        out = dict(json.loads(res.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        raise RemoteError(
            host,
            what,
            f"the host side failed (exit code {res.rc})",
            f"<devkit-edit.py {what}>",
            res.rc,
            (res.stderr or res.stdout)[-2000:],
        ) from None
    if out.get("error") and "base" not in out:
        raise DevkitError(
            f"{host}: {out['error']}",
            "Provision a stack whose stack.toml has an [edit] group: "
            f"devkit provision {host} (see the README's edit loop).",
        )
    return out


def locate(conn: Connection, host: str, req: dict[str, Any]) -> Place:
    out = _run(conn, host, "locate", req)
    return Place(conn, host, str(out["base"]), dict(out["rules"]))


def changed(
    conn: Connection, host: str, req: dict[str, Any], dry_run: bool = False
) -> dict[str, Any]:
    """Restart the services whose files changed since each started (one command on the host);
    returns the host's report (see onhost/edit/look.py: once)."""
    return _run(conn, host, "changed", {**req, "dry_run": dry_run})


def lines(host: str, report: dict[str, Any]) -> list[str]:
    return edit_report.describe(report, host)


def ok(report: dict[str, Any]) -> bool:
    return (
        not report.get("error")
        and not report.get("kept")
        and all(r["ok"] for r in report.get("restarted", []))
    )


def _ctl(place: Place, *args: str) -> Any:
    return supervisor.ctl(place.layout, *args)


def start_temporary(place: Place) -> None:
    """Run the watcher under the stack's supervisord until stop_temporary (watch = false): the same
    program the stack runs with watch = true; the next `devkit provision` removes it if it is left."""
    prog = supervisor.Program(
        edit_kind.WATCHER,
        edit_kind.watcher_line(place.rules["python"], place.base),
        {},
        "",
        "",
        **edit_kind.PROGRAM,
    )
    conf = supervisor.program_conf(place.layout, prog)
    path = place.layout.path(layout.program_conf_rel(edit_kind.WATCHER))
    place.conn.put(path, conf.encode(), 0o640, "watch")
    place.conn.run(
        join(
            [
                sh(_ctl(place, "reread"), ">/dev/null"),
                sh(_ctl(place, "add", edit_kind.WATCHER), ">/dev/null"),
                sh(_ctl(place, "start", edit_kind.WATCHER), ">/dev/null"),
            ]
        ),
        "watch",
    )


def stop_temporary(place: Place) -> None:
    path = place.layout.path(layout.program_conf_rel(edit_kind.WATCHER))
    place.conn.run(
        join(
            [
                sh("{", _ctl(place, "stop", edit_kind.WATCHER), ">/dev/null 2>&1 || true; }"),
                sh("{", _ctl(place, "remove", edit_kind.WATCHER), ">/dev/null 2>&1 || true; }"),
                sh("rm -f --", q(path)),
            ]
        ),
        "watch",
        check=False,
    )


def follow(place: Place, out: TextIO) -> int:
    """The watcher's log as it grows (its last lines first), until Ctrl-C."""
    log = q(place.layout.log(edit_kind.WATCHER))
    return place.conn.stream(sh("tail -n 20 -F --", log, "2>/dev/null"), out, pty=True)


def ensure_watcher(place: Place) -> bool:
    """The host's watcher runs: the stack's, started if it was stopped, or one run under the
    stack's supervisord until stop_temporary (watch = false); True for the latter."""
    st = place.conn.run(_ctl(place, "status", edit_kind.WATCHER), "watch", check=False).stdout
    if "no such process" in st or not st.strip():
        start_temporary(place)
        return True
    if "RUNNING" not in st:
        start_watcher(place)
    return False


def start_watcher(place: Place) -> None:
    place.conn.run(
        sh("{", _ctl(place, "start", edit_kind.WATCHER), ">/dev/null 2>&1 || true; }"), "watch"
    )


# --- VS Code ------------------------------------------------------------------------------------


def code_command(alias: str, checkout: str) -> list[str]:
    return ["code", "--remote", f"ssh-remote+{alias}", checkout]


def open_code(alias: str, checkout: str, out: TextIO) -> int:
    """Print the command that opens the checkout in VS Code over SSH; run it where `code` exists."""
    argv = code_command(alias, checkout)
    out.write(shlex.join(argv) + "\n")
    exe = shutil.which("code")
    if exe is None:
        out.write("(`code` is not on this machine's PATH: run the command where VS Code is)\n")
        return 0
    return subprocess.run([exe, *argv[1:]], check=False).returncode
