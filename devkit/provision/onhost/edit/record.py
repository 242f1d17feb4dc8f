"""What a service's process imported from the checkout, for the edit loop's restart sets: this file
is written to the host as `sitecustomize.py` in a folder the launcher puts last on its children's
PYTHONPATH (so the project's own sitecustomize, if any, comes first; one further along sys.path is
run from here). It does nothing unless the launcher set DEVKIT_IMPORTS.

Each process writes `$DEVKIT_IMPORTS.<pid>.json` (the checkout's modules in sys.modules, by file)
within a second of importing more. The thread that looks is stopped around a fork and started
again on both sides, so a forking server (Backend.AI's) forks with one thread, as it would without
it. SIGUSR2 makes the process write its threads' stacks to its log. Standard library only; it
runs in every Python process the service starts.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _modules(root: str) -> dict[str, str]:
    """checkout-relative file -> module name, for every module loaded from the checkout (not from
    an interpreter's or venv's own folders, which may be inside it: Backend.AI's dist/)."""
    out = {}
    top = root.rstrip("/") + "/"
    venvs = tuple({p.rstrip("/") + "/" for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if not isinstance(f, str):
            continue
        path = os.path.abspath(f)
        if path.startswith(top) and not path.startswith(venvs):
            if name in ("__main__", "__mp_main__"):  # the main module, by its own name
                spec = getattr(mod, "__spec__", None)
                name = getattr(spec, "name", None) or name
            out[path[len(top) :]] = name
    return out


def _others(files: dict[str, str]) -> list[str]:
    """The other modules (the interpreter's, the venv's), by name, in the order they came."""
    ours = set(files.values()) | {"__main__", "__mp_main__", "sitecustomize"}
    return [n for n in list(sys.modules) if n not in ours]


# the checkout's modules last written, and since when they are those (a process that imports
# only the interpreter's or the venv's modules later, as a server does on a request, has a
# settled record all the same)
_last: dict[str, object] = {"files": None, "since": 0.0}


def _dump(prefix: str, root: str) -> None:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    files = _modules(root)
    if files != _last["files"]:
        _last["files"], _last["since"] = files, time.time()
    data = {
        "pid": os.getpid(),
        "main": getattr(spec, "name", "") or "",
        "files": files,
        "others": _others(files),
        "since": _last["since"],
    }
    path = f"{prefix}.{os.getpid()}.json"
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        pass  # nowhere to write: the edit loop then goes by the stack's paths


def _watch(prefix: str, root: str) -> None:
    import threading  # here, not in the thread: it must never wait for the import lock

    state = {"stop": threading.Event(), "thread": None, "seen": -1}

    def loop(stop: threading.Event) -> None:
        while not stop.wait(1.0):
            n = len(sys.modules)
            if n != state["seen"]:
                state["seen"] = n
                _dump(prefix, root)

    def start() -> None:
        stop = threading.Event()
        t = threading.Thread(target=loop, args=(stop,), name="devkit-imports", daemon=True)
        state["stop"], state["thread"] = stop, t
        t.start()

    def before_fork() -> None:
        t = state["thread"]
        if t is not None:
            state["stop"].set()
            t.join(2.0)
            state["thread"] = None

    def after_in_child() -> None:
        state["seen"] = -1
        start()

    os.register_at_fork(before=before_fork, after_in_parent=start, after_in_child=after_in_child)
    start()


def _next_sitecustomize() -> None:
    """The sitecustomize this one hides (further along sys.path), run as it would have been."""
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.machinery

    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None and spec.origin != os.path.abspath(__file__):
        import importlib.util

        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


def _stacks_on_signal() -> None:
    """SIGUSR2 writes every thread's Python stack to stderr (the service's log), as faulthandler
    does: a start that hangs shows where (the edit loop asks before it gives up on one). A
    service that sets its own handler for it replaces this one."""
    try:
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR2, all_threads=True, chain=False)
    except (AttributeError, ValueError, RuntimeError, OSError):
        pass  # no faulthandler, or no stderr to write to


def main() -> None:
    prefix = os.environ.get("DEVKIT_IMPORTS", "")
    root = os.environ.get("DEVKIT_IMPORTS_ROOT", "")
    if prefix and root and hasattr(os, "register_at_fork"):
        _watch(prefix, root)
        _stacks_on_signal()
    _next_sitecustomize()


if __name__ == "sitecustomize":
    main()
