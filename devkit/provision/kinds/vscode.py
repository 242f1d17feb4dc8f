"""VS Code's settings in the checkout (.vscode/settings.json): the dev venv's interpreter, the
folders the services import from for the language server, and the same PYTHONPATH in the
integrated terminal. Written only where the repository ignores the file (Backend.AI's .gitignore
does) and never over the contributor's own: then devkit says once what it would set."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, NamedTuple

from devkit.provision.kinds.base import (
    LATER,
    ApplyContext,
    Ask,
    Build,
    Desired,
    Facts,
    Op,
    PlanState,
    no_check,
    no_diff,
    no_finish,
    no_notes,
    no_steps,
)
from devkit.provision.kinds.edit import DEdit
from devkit.provision.onhost.facts import file_fact, read, run
from devkit.provision.ssh.command import q, sh
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack.layout import EDIT_RULES
from devkit.provision.stack.spec import Stack

NAME = "vscode"
RECORD = "state/vscode.json"  # what devkit wrote there, and what it already told about
REL = ".vscode/settings.json"


class DVscode(NamedTuple):
    checkout: str
    path: str  # absolute
    content: str
    summary: str  # the settings, one line for people


class VscodeFacts(NamedTuple):
    written: str  # sha256 of what devkit last wrote there ("" = never)
    told: str  # the contributor's file devkit last said it keeps (its sha256, or "absent")
    checkout: bool | None = None  # the rest is asked once the stack is rendered (refresh)
    sha256: str = ""  # the file there now ("" = none)
    ignored: bool = True  # by the repository's .gitignore (True too when it is not a git checkout)
    looked: str = ""  # the checkout these facts are of ("" = none looked at yet)


def request(stack: Stack) -> dict[str, str]:
    return {"record": RECORD, "rules": EDIT_RULES, "rel": REL}


def collect(req: dict[str, str], base: str) -> dict[str, Any]:  # runs on the host
    """devkit's record, and the checkout's side: whether it exists, the settings file there now,
    and whether the repository ignores that path. The checkout is the one asked for (a second
    look, once the stack is rendered), else the one the edit loop's rules as last provisioned
    name, so that a host whose checkout stayed where it was is looked at in one round trip."""
    import json as _json

    try:
        out: dict[str, Any] = dict(_json.loads(read(os.path.join(base, req["record"])) or "{}"))
    except ValueError:
        out = {}
    top = req.get("checkout")
    if not top and req.get("rules"):
        try:
            top = _json.loads(read(os.path.join(base, req["rules"])) or "{}").get("checkout")
        except (ValueError, AttributeError):
            top = None
    if top and isinstance(top, str):
        out["looked"] = top
        out["checkout"] = os.path.isdir(top)
        info = file_fact(os.path.join(top, req["rel"]))
        out["sha256"] = info["sha256"] if info else ""
        if out["checkout"]:
            rc, _ = run(["git", "-C", top, "check-ignore", "-q", "--no-index", req["rel"]])
            out["ignored"] = rc != 1  # 1: not ignored; 128: not a git checkout
    return out


REMOTE = (collect,)


def parse(raw: Any) -> VscodeFacts:
    raw = raw or {}
    return VscodeFacts(
        str(raw.get("written") or ""),
        str(raw.get("told") or ""),
        None if "checkout" not in raw else bool(raw["checkout"]),
        str(raw.get("sha256") or ""),
        bool(raw.get("ignored", True)),
        str(raw.get("looked") or ""),
    )


def settings(d: DEdit) -> dict[str, Any]:
    paths = list(d.pythonpath)
    return {
        "python.defaultInterpreterPath": d.python,
        "python.analysis.extraPaths": paths,
        "terminal.integrated.env.linux": {
            "PYTHONPATH": ":".join("${workspaceFolder}/" + p for p in paths)
        },
    }


def desired(b: Build) -> DVscode | None:
    e: DEdit | None = b.built.get("edit")
    if e is None or not e.vscode:
        return None
    s = settings(e)
    summary = "; ".join(f"{k} = {json.dumps(v)}" for k, v in s.items())
    content = json.dumps(s, indent=2) + "\n"
    return DVscode(e.checkout, f"{e.checkout}/{REL}", content, summary)


def refresh(conn: Connection, d: Desired, f: Facts, ask: Ask) -> Facts:
    """Look at the checkout's settings file once the stack is rendered (where it is)."""
    v: DVscode | None = d.of(NAME)
    if v is None or f.of(NAME).looked == v.checkout:
        return f
    raw = ask(NAME, {"record": RECORD, "checkout": v.checkout, "rel": REL})
    return f._replace(kinds={**f.kinds, NAME: parse(raw)})


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def plan(d: Desired, f: Facts, state: PlanState) -> list[Op]:
    v: DVscode | None = d.of(NAME)
    if v is None:
        return []
    have: VscodeFacts = f.of(NAME)
    want = digest(v.content)
    if not have.checkout:
        # the checkout comes later in this run (its kind or init step): decided when it is there
        return [Op(NAME, NAME, "write", f"{REL} in {v.checkout}: {v.summary}", v)]
    if have.sha256 == want:
        return []
    if have.sha256 and have.sha256 == have.written:
        return [Op(NAME, NAME, "update", f"{v.path}: {v.summary}", v)]
    if have.sha256:
        if have.told == have.sha256:
            return []
        return [
            Op(
                NAME,
                NAME,
                "keep",
                f"the contributor's {v.path} is kept; devkit would set: {v.summary}",
                v,
            )
        ]
    if not have.ignored:
        if have.told == "absent":
            return []
        return [
            Op(
                NAME,
                NAME,
                "keep",
                f"{REL} is not ignored by the repository, so devkit leaves it to you; "
                f"it would set: {v.summary}",
                v,
            )
        ]
    return [Op(NAME, NAME, "create", f"{v.path}: {v.summary}", v)]


_WRITE = (
    "import hashlib, os, subprocess, sys\n"
    "top, rel, old, data = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()\n"
    "path = os.path.join(top, rel)\n"
    "if not os.path.isdir(top):\n"
    "    sys.exit('the checkout %s does not exist' % top)\n"
    "try:\n"
    "    with open(path, 'rb') as f:\n"
    "        now = hashlib.sha256(f.read()).hexdigest()\n"
    "except OSError:\n"
    "    now = ''\n"
    "if now and now != old:\n"
    "    print('kept ' + now); sys.exit(0)\n"
    "if not now:\n"
    "    rc = subprocess.run(['git', '-C', top, 'check-ignore', '-q', '--no-index', rel],\n"
    "                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "    if rc == 1:\n"
    "        print('kept absent'); sys.exit(0)\n"
    "os.makedirs(os.path.dirname(path), exist_ok=True)\n"
    "tmp = path + '.devkit-tmp'\n"
    "with open(tmp, 'wb') as f:\n"
    "    f.write(data)\n"
    "if now:\n"
    "    os.replace(tmp, path)\n"
    "else:\n"
    "    try:\n"
    "        os.link(tmp, path)\n"  # never over a file that appeared meanwhile
    "    except FileExistsError:\n"
    "        os.unlink(tmp); print('kept appeared'); sys.exit(0)\n"
    "    os.unlink(tmp)\n"
    "print('wrote ' + hashlib.sha256(data).hexdigest())\n"
)


def apply(conn: Connection, op: Op, ctx: ApplyContext) -> None:
    v: DVscode = op.item
    have: VscodeFacts = ctx.f.of(NAME)
    record = {"written": have.written, "told": have.told}
    if op.action == "keep":
        record["told"] = have.sha256 or "absent"
    else:
        # written only where it is still devkit's (or absent and ignored): decided on the host
        old = have.written if op.action == "update" else ""
        cmd = sh("/usr/bin/python3", "-I", "-S", "-c", q(_WRITE), q(v.checkout), q(REL), q(old))
        res = conn.run(sh(cmd, q(v.content)).labelled(f"write {v.path}"), op.id)
        word, _, value = res.stdout.strip().partition(" ")
        if word == "wrote":
            record["written"] = value
        elif value in ("absent", "appeared"):
            record["told"] = "absent"
        else:
            record["told"] = value
    conn.put(ctx.d.layout.path(RECORD), (json.dumps(record) + "\n").encode(), 0o640, op.id)


# the hooks this kind does without (base.py's defaults)
STAGE = LATER
GROUP = None
check = no_check
finish = no_finish
diff = no_diff
steps = no_steps
notes = no_notes
