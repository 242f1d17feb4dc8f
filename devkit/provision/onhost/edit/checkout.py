"""The checkout's side: which files git tracks (or would) under the watched roots and when
each changed, and which changed Python files do not compile under the services' interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

IGNORED_DIRS = {
    ".git",
    "__pycache__",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
}


def mtime(path: str) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def _gone_since(checkout: str, rel: str) -> float:
    """When a file that is gone went: its nearest remaining folder changed then."""
    d = os.path.dirname(rel)
    while True:
        t = mtime(os.path.join(checkout, d) if d else checkout)
        if t is not None:
            return t
        if not d:
            return 0.0
        d = os.path.dirname(d)


def candidates(checkout: str, under: list[str]) -> dict[str, float]:
    """Every file under the given roots that git tracks or would track (ignored ones left out),
    with when it last changed; a tracked file that is gone counts from when its folder changed."""
    cmd = ["git", "-C", checkout, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    cmd += ["--", *under] if under != ["."] else []
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        p = None
    if p is not None and p.returncode == 0:
        names = [n for n in p.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    else:  # not a git checkout: every file but the obvious caches
        names = []
        for r in under:
            top = os.path.join(checkout, r)
            if os.path.isfile(top):
                names.append(r)
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
                rel = os.path.relpath(dirpath, checkout)
                names += [
                    os.path.normpath(os.path.join(rel, f))
                    for f in filenames
                    if not f.endswith((".pyc", ".pyo"))
                ]
    out = {}
    for n in dict.fromkeys(names):
        t = mtime(os.path.join(checkout, n))
        out[n] = t if t is not None else _gone_since(checkout, n)
    return out


_CHECK = (
    "import json, sys\n"
    "out = {}\n"
    "for path in sys.argv[1:]:\n"
    "    try:\n"
    "        with open(path, 'rb') as f:\n"
    "            compile(f.read(), path, 'exec', dont_inherit=True)\n"
    "    except SyntaxError as e:\n"
    "        out[path] = [e.lineno or 0, type(e).__name__ + ': ' + (e.msg or '')]\n"
    "    except (OSError, ValueError) as e:\n"
    "        pass\n"
    "print(json.dumps(out))\n"
)


def syntax_errors(checkout: str, files: list[str], python: str) -> dict[str, Any]:
    """The changed Python files that do not compile, under the dev venv's interpreter (the
    services' grammar): path -> [line, message]."""
    paths = [f for f in files if f.endswith(".py") and os.path.isfile(os.path.join(checkout, f))]
    if not paths:
        return {}
    here = os.path.realpath(sys.executable)
    if not python or not os.path.exists(python) or os.path.realpath(python) == here:
        out: dict[str, Any] = {}
        for rel in paths:
            try:
                with open(os.path.join(checkout, rel), "rb") as f:
                    compile(f.read(), rel, "exec", dont_inherit=True)
            except SyntaxError as e:
                out[rel] = [e.lineno or 0, type(e).__name__ + ": " + (e.msg or "")]
            except (OSError, ValueError):
                pass
        return out
    p = subprocess.run(
        [python, "-I", "-S", "-c", _CHECK, *paths],
        cwd=checkout,
        capture_output=True,
        timeout=60,
    )
    try:
        return dict(json.loads(p.stdout.decode() or "{}"))
    except ValueError:
        return {}
