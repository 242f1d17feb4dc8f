"""Edit latency: for each restart the edit loop made, the seconds from the save (the newest of the
files that caused it) to the new process serving; the recent ones per service in
`<base>/state/edit-latency.json`, which `devkit status` summarizes (last, p50, p95)."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

FILE = "state/edit-latency.json"
KEEP = 50  # restarts remembered per service


def load(base: str) -> dict[str, list[dict[str, Any]]]:
    try:
        with open(os.path.join(base, FILE), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {str(k): list(v) for k, v in data.items() if isinstance(v, list)}


def record(base: str, results: list[dict[str, Any]]) -> None:
    """Add the restarts that served (under the edit lock: one writer at a time)."""
    done = [r for r in results if r.get("ok") and "latency" in r]
    if not done:
        return
    data = load(base)
    now = round(time.time(), 3)
    for r in done:
        how = r.get("how", "") + (", warm" if r.get("warm") else "")
        row = {"at": now, "seconds": r["latency"], "how": how}
        data[r["service"]] = [*data.get(r["service"], []), row][-KEEP:]
    path = os.path.join(base, FILE)
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)
    except OSError:
        pass  # not recorded: the edit itself is served all the same


def percentile(xs: list[float], p: float) -> float:
    """The nearest-rank percentile (pure): p50 of 1, 2, 3, 4 is 2."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A service's last edit-to-serving time and the p50 / p95 of the recent ones (pure)."""
    xs = [float(r["seconds"]) for r in rows if isinstance(r.get("seconds"), (int, float))]
    if not xs:
        return {}
    return {
        "last": xs[-1],
        "p50": percentile(xs, 50),
        "p95": percentile(xs, 95),
        "count": len(xs),
        "how": str(rows[-1].get("how") or ""),
    }
