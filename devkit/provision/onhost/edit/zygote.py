"""A service's warm interpreter (the edit loop's `[edit] warm`): run by the launcher in the service's
own interpreter, as its command would run (`PYTHON zygote.py FD PLAN -m MODULE ARGS...`), it
imports the modules of the plan (what the service's process imported, less the files a recent
edit touched and every module that imports them), says which checkout files it loaded, and then,
on each request, forks a new process of the service that runs MODULE as `python -m` would, with
those modules imported already. Written to the host beside the launcher's sitecustomize; standard
library only, and no devkit import (it runs outside the shipped script).

The new process is forked twice, so that it is the launcher's child (the launcher is a child
subreaper), not this one's: the launcher waits for it, retires it and sees it crash, as it does a
process it started itself. Requests and answers are JSON lines on the socket FD.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import socket
import sys
from typing import Any


def loaded(root: str) -> dict[str, float]:
    """checkout-relative file -> its mtime, for each module loaded from the checkout (not from an
    interpreter's or venv's own folders, which may be inside it)."""
    top = root.rstrip("/") + "/"
    venvs = tuple({p.rstrip("/") + "/" for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    out = {}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not isinstance(f, str):
            continue
        path = os.path.abspath(f)
        if path.startswith(top) and not path.startswith(venvs):
            try:
                out[path[len(top) :]] = os.stat(path).st_mtime
            except OSError:
                out[path[len(top) :]] = 0.0
    return out


def prepare(plan: dict[str, Any]) -> int:
    """Import the plan's modules, in order; a module that fails is left out (the new process
    imports it itself, and fails as a cold start would). How many failed."""
    failed = 0
    for name in plan["modules"]:
        try:
            importlib.import_module(name)
        except BaseException:
            failed += 1
    return failed


def fork(chan: socket.socket, module: str, args: list[str]) -> int:
    """A new process of the service, as a grandchild (its parent ends at once): its pid."""
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(r)
        pid = os.fork()
        if pid == 0:
            os.close(w)
            chan.close()
            sys.argv = [module, *args]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            sys.exit(0)
        os.write(w, str(pid).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        pid = int(f.read() or 0)
    os.waitpid(middle, 0)
    return pid


def main(argv: list[str]) -> int:
    fd, plan_path, rest = int(argv[1]), argv[2], argv[3:]
    if len(rest) < 2 or rest[0] != "-m":
        sys.stderr.write("devkit zygote: the command is not PYTHON -m MODULE ARGS\n")
        return 2
    module, args = rest[1], rest[2:]
    sys.path[0] = os.getcwd()  # as `python -m` has it (this file's folder was put there)
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    chan = socket.socket(fileno=fd)
    failed = prepare(plan)
    chan.sendall(
        json.dumps({"ready": True, "loaded": loaded(plan["root"]), "failed": failed}).encode()
        + b"\n"
    )
    buf = b""
    while True:
        chunk = chan.recv(65536)
        if not chunk:
            return 0  # the launcher is gone, or done with this one
        buf += chunk
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            req = json.loads(line.decode() or "{}")
            if req.get("do") == "fork":
                chan.sendall(json.dumps({"pid": fork(chan, module, args)}).encode() + b"\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
