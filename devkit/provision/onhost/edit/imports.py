"""What a service's running processes imported from the checkout (their records: record.py, written
through the launcher), and the chain of imports that leads from the service's main module to a
file (for `restart --changed --dry-run`), from the static imports among the recorded modules."""

from __future__ import annotations

import ast
import json
import os
import time
from collections import deque
from typing import Any

from devkit.provision.onhost.edit.paths import imports_prefix
from devkit.provision.onhost.edit.procs import tree

SETTLE = 2.0  # checkout modules changed this recently: the process may still be importing


def recorded(base: str, service: str, pid: int) -> dict[str, Any] | None:
    """The modules the process pid and those below it imported from the checkout: {"main": its
    main module, "files": {checkout-relative file: module}, "others": the other modules' names};
    None when the process has no record (it runs without the launcher, or has only just
    started)."""
    prefix = imports_prefix(base, service)
    files: dict[str, str] = {}
    others: dict[str, None] = {}
    main, found = "", False
    for p in sorted(tree(pid)):
        path = f"{prefix}.{p}.json"
        try:
            written = os.path.getmtime(path)
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        # settled: the checkout's modules unchanged for SETTLE (by the record's own time of
        # them; a record without one, by when it was written)
        since = rec.get("since")
        if time.time() - (since if isinstance(since, (int, float)) else written) < SETTLE:
            return None
        found = found or p == pid
        files.update({str(k): str(v) for k, v in (rec.get("files") or {}).items()})
        others.update(dict.fromkeys(str(n) for n in rec.get("others") or ()))
        main = main or str(rec.get("main") or "")
    return {"main": main, "files": files, "others": list(others)} if found else None


def _imported_names(path: str, module: str, package: bool) -> list[str]:
    """The modules a file's import statements name (absolute; relative ones resolved), and the
    packages above each, which an import runs too."""
    try:
        with open(path, "rb") as f:
            tree_ = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    here = module if package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree_):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            top = here
            for _ in range(max(0, node.level - 1)):
                top = top.rpartition(".")[0]
            base = ".".join(p for p in (top if node.level else "", node.module or "") if p)
            out.append(base)
            out += [f"{base}.{a.name}" if base else a.name for a in node.names]
    names = []
    for name in out:
        parts = name.split(".")
        names += [".".join(parts[: i + 1]) for i in range(len(parts))]
    return names


def chain(checkout: str, rec: dict[str, Any], target: str) -> list[str]:
    """The modules from the record's main module to the target file's, each importing the next
    (static imports among the recorded modules; [] when none leads there: imported at run time)."""
    files: dict[str, str] = rec["files"]
    by_name = {m: f for f, m in files.items()}
    goal, start = files.get(target), rec.get("main") or ""
    if not goal or start not in by_name:
        return []
    came: dict[str, str] = {start: ""}
    todo = deque([start])
    while todo:
        m = todo.popleft()
        if m == goal:
            path = [m]
            while came[path[-1]]:
                path.append(came[path[-1]])
            return path[::-1]
        f = by_name[m]
        for n in _imported_names(os.path.join(checkout, f), m, f.endswith("__init__.py")):
            if n in by_name and n not in came:
                came[n] = m
                todo.append(n)
    return []


def importers(checkout: str, rec: dict[str, Any], targets: set[str]) -> set[str]:
    """The modules of the targets (checkout files) and every recorded module that imports one of
    them, directly or through others (static imports, wherever in the file they are)."""
    files: dict[str, str] = rec["files"]
    names = set(files.values())
    by: dict[str, set[str]] = {}
    for f, m in files.items():
        for n in _imported_names(os.path.join(checkout, f), m, f.endswith("__init__.py")):
            if n in names:
                by.setdefault(n, set()).add(m)
    out: set[str] = set()
    todo = [files[t] for t in targets if t in files]
    while todo:
        m = todo.pop()
        if m not in out:
            out.add(m)
            todo += by.get(m, ())
    return out
