"""One look: what changed since each service started, restarted under the edit lock (the
watcher, `restart --changed` and `sync` never restart a service twice for one save)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Any

from devkit.provision.onhost.edit import latency
from devkit.provision.onhost.edit.checkout import candidates, mtime, syntax_errors
from devkit.provision.onhost.edit.imports import chain, recorded
from devkit.provision.onhost.edit.rules import all_patterns, blocked, decide, roots
from devkit.provision.onhost.edit.services import process_starts, restart, supervisor


def _looked(path: str) -> float:
    try:
        with open(path) as f:
            return float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def _chain(checkout: str, rec: dict[str, Any] | None, files: list[str]) -> dict[str, Any]:
    """How the service's process came to import the first changed file it imported: the import
    chain from its main module ([] where the import is made at run time); {} without a record."""
    if rec is None:
        return {}
    target = next((f for f in files if f in rec["files"]), "")
    return {"file": target, "modules": chain(checkout, rec, target)} if target else {}


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return dict(json.load(f))


def _health(base: str) -> dict[str, str]:
    try:
        with open(os.path.join(base, "state", "services.json"), encoding="utf-8") as f:
            return dict(json.load(f).get("health") or {})
    except (OSError, ValueError):
        return {}


class Lock:
    """One decision-and-restart at a time per stack (the watcher, restart --changed, sync). A
    caller that holds it already (sync, while it changes the files) hands its descriptor down."""

    def __init__(self, base: str) -> None:
        self.path = os.path.join(base, "run", "edit.lock")
        self.fd, self.own = -1, True

    def __enter__(self) -> Lock:
        held = os.environ.get("DEVKIT_EDIT_LOCK_FD", "")
        if held.isdigit():
            self.fd, self.own = int(held), False
        else:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.own:
            os.close(self.fd)


def once(
    rules: dict[str, Any], dry_run: bool = False, quiet: dict[str, float] | None = None
) -> dict[str, Any]:
    """Look once and restart what changed. `quiet` (the watcher's): files whose syntax error or
    note was already reported as of that time, left out until they change again; the report's
    `told` is the next one."""
    base, checkout = rules["base"], rules["checkout"]
    if not os.path.isdir(checkout):
        return {"error": f"the checkout {checkout} does not exist on this host"}
    rpc = supervisor(os.path.join(base, "run", "supervisor.sock"))
    try:
        infos = [p for p in rpc.getAllProcessInfo() if p["name"] in rules["services"]]
    except OSError as exc:
        return {
            "error": f"the stack's supervisord does not answer ({exc}): `devkit start` brings it back"
        }
    starts, stops, pids = process_starts(infos, base)
    look = os.path.join(base, "state", "edit-looked")
    now = time.time()
    files = candidates(checkout, roots(all_patterns(rules)))
    records = {s: recorded(base, s, pids[s]) for s in starts if pids.get(s)}
    seen = {s: set(rec["files"]) for s, rec in records.items() if rec is not None}
    for f in set().union(*seen.values()) - set(files):  # imported from outside the paths
        t = mtime(os.path.join(checkout, f))
        if t is not None:
            files[f] = t
    plan = decide(files, starts, stops, rules, _looked(look), seen)
    todo = plan["restart"]
    changed = sorted({f for fs in todo.values() for f in fs})
    errors = syntax_errors(checkout, changed, rules.get("python", ""))
    bad = blocked(todo, errors)
    quiet = quiet or {}

    def new(fs: list[str]) -> bool:
        return any(quiet.get(f) != files.get(f) for f in fs)

    report: dict[str, Any] = {
        "kept": [],
        "restarted": [],
        "would": [],
        "stopped": [{"service": s, "files": fs} for s, fs in plan["stopped"].items() if new(fs)],
        "notes": [{"note": n, "files": fs} for n, fs in plan["notes"] if new(fs)],
        "spared": [{"service": s, "files": fs} for s, fs in plan["spared"].items() if new(fs)],
    }
    for s, fs in bad.items():
        if new(fs):
            errs = [{"file": f, "line": errors[f][0], "message": errors[f][1]} for f in fs]
            report["kept"].append({"service": s, "pid": pids.get(s, 0), "errors": errs})
    told = [f for fs in bad.values() for f in fs] + [f for _, fs in plan["notes"] for f in fs]
    told += [f for fs in plan["stopped"].values() for f in fs]
    told += [f for fs in plan["spared"].values() for f in fs]
    report["told"] = {f: files.get(f, 0.0) for f in told}
    go = [s for s in rules["order"] if s in todo and s not in bad]
    if dry_run:
        report["would"] = [
            {"service": s, "files": todo[s], "chain": _chain(checkout, records.get(s), todo[s])}
            for s in go
        ]
        return report
    try:
        with open(look + ".tmp", "w") as f:
            f.write(f"{now}\n")
        os.replace(look + ".tmp", look)
    except OSError:
        pass  # notes are then said again next time
    if go:
        over = {k: int(v) for k, v in (rules.get("overlap") or {}).items() if str(v).isdigit()}
        results = restart(rpc, go, _health(base), base, over, rules.get("stop_first") or {}, todo)
        for r in results:
            r["files"] = todo[r["service"]]
            if r.get("served_at"):
                saved = max(files.get(f, 0.0) for f in r["files"])
                r["latency"] = round(max(0.0, r.pop("served_at") - saved), 3)
        latency.record(base, results)
        report["restarted"] = results
    return report
