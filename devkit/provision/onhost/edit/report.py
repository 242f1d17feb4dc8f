"""The lines people read of an edit-loop look (pure): `restart --changed`, `sync` and the
watcher's log say the same."""

from __future__ import annotations

from typing import Any


def few(files: list[str], n: int = 3) -> str:
    shown = ", ".join(files[:n])
    return shown + (f" and {len(files) - n} more" if len(files) > n else "")


def _how(r: dict[str, Any]) -> str:
    # its first start hung, and its log says where (services.look_into)
    again = "; its first start hung, so it was started again" if r.get("started") == 2 else ""
    if r.get("how") == "overlapped":
        warm = " (warm)" if r.get("warm") else ""
        return f"{warm}; the old process served until then{again}"
    if r.get("why"):
        return f"; stopped first: {r['why']}{again}"
    return again


def describe(report: dict[str, Any], host: str = "HOST") -> list[str]:
    """The lines people read, for `restart --changed`, `sync` and the watcher's log (pure)."""
    lines = []
    if report.get("error"):
        return [report["error"]]
    for r in report.get("restarted", []):
        why = f"{few(r['files'])} changed"
        if r["ok"]:
            lines.append(
                f"{r['service']}: restarted ({why}), healthy in {r['seconds']:.1f} s{_how(r)}"
            )
        elif r.get("how") == "overlapped":
            lines.append(f"{r['service']}: NOT restarted ({why}): its new process {r['error']}")
        else:
            lines.append(f"{r['service']}: restarted ({why}) and FAILED: {r['error']}")
        lines += ["    | " + ln for ln in r.get("log", "").rstrip().splitlines()]
    for r in report.get("would", []):
        lines.append(f"{r['service']}: would restart ({few(r['files'])} changed)")
        c = r.get("chain") or {}
        if len(c.get("modules") or ()) == 1:
            lines.append(f"    {c['file']} is its main module ({c['modules'][0]})")
        elif c.get("modules"):
            lines.append(f"    {c['file']} is imported: {' -> '.join(c['modules'])}")
        elif c.get("file"):
            lines.append(
                f"    {c['file']} is imported at run time (no import statement leads there)"
            )
    for r in report.get("spared", []):
        lines.append(
            f"{r['service']}: not restarted for {few(r['files'])}: its process never imported "
            + ("them" if len(r["files"]) > 1 else "it")
        )
    for k in report.get("kept", []):
        e = k["errors"][0]
        pid = f" (pid {k['pid']})" if k.get("pid") else ""
        lines.append(
            f"{k['service']}: NOT restarted: {e['file']}:{e['line']}: {e['message']}; "
            f"the running process{pid} keeps serving"
        )
        lines += [f"    also {x['file']}:{x['line']}: {x['message']}" for x in k["errors"][1:]]
    for s in report.get("stopped", []):
        lines.append(
            f"{s['service']}: not started ({few(s['files'])} changed since it was stopped; "
            f"`devkit start {host} {s['service']}` starts it)"
        )
    for n in report.get("notes", []):
        lines.append(f"note: {few(n['files'])} changed: {n['note']}")
    if not lines:
        lines.append("nothing to restart: no service's files changed since it started")
    return lines
