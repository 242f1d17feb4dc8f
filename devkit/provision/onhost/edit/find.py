"""Finding the stack with an edit loop on this host (what `devkit status` does with
`inventory`, in the same round trip)."""

from __future__ import annotations

import os
from typing import Any

from devkit.provision.onhost.edit.look import load

RULES = "supervisor/edit.json"


def find(req: dict[str, Any]) -> str:
    """The base dir of the one stack with an edit loop the request names: its `base` (~ and
    @devkit spelled as devkit does), else devkit's own folders on this host; `stack` picks one."""
    home = "/var/lib/devkit" if os.getuid() == 0 else os.path.expanduser("~/.devkit")
    base = req.get("base") or ""
    if base:
        if base == "@devkit" or base.startswith("@devkit/"):
            base = home + base[len("@devkit") :]
        dirs = [os.path.expanduser(base)]
    else:
        import glob

        homes = ["/var/lib/devkit", os.path.expanduser("~/.devkit")]
        pats = [h + "/*" for h in homes] + [h + "/" + req.get("host", "") + "/*" for h in homes]
        dirs = [d for p in pats for d in sorted(glob.glob(p))]
    found = []
    for d in dict.fromkeys(dirs):
        try:
            with open(os.path.join(d, ".devkit-stack"), encoding="utf-8") as f:
                marker = [*f.read().splitlines(), "", ""][:2]
        except OSError:
            continue
        if req.get("stack") and req["stack"] not in marker:
            continue
        if os.path.exists(os.path.join(d, RULES)):
            found.append((d, marker[0]))
    if len(found) == 1:
        return found[0][0]
    if not found:
        where = base or "/var/lib/devkit, ~/.devkit"
        raise LookupError("no provisioned stack with an edit loop ([edit]) in " + where)
    raise LookupError(
        "several stacks with an edit loop: "
        + ", ".join(f"{n} at {d}" for d, n in found)
        + "; say which with --stack or --base-dir"
    )


def located(req: dict[str, Any]) -> dict[str, Any]:
    """The stack's base dir and its rules (the request's `rules` file, else the one `find` finds)."""
    rules = load(req.get("rules") or os.path.join(find(req), RULES))
    return {"base": rules["base"], "rules": rules}
