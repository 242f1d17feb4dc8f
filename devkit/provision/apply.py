"""Apply: run the plan's ops on one host, in order; each op is one command or one atomic file write.

Every value that reaches the remote shell goes through shlex.quote. Secrets are written 0600 via SFTP
and never appear in a command line.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

from devkit.errors import RemoteError
from devkit.provision import supervisor
from devkit.provision.connect import Remote
from devkit.provision.desired import Desired, DInit, DProgram, DVenv
from devkit.provision.facts import Facts
from devkit.provision.plan import Op

q = shlex.quote
HEALTH_TIMEOUT = 60


def as_user(cmd: str, user: str, login: str, is_root: bool) -> str:
    """`sh -c CMD`, as `user` when that is not the login user (runuser as root, else sudo -n)."""
    if not user or user == login:
        return f"sh -c {q(cmd)}"
    if is_root:
        return f"runuser -u {q(user)} -- sh -c {q(cmd)}"
    return f"sudo -n -u {q(user)} -- sh -c {q(cmd)}"


def privileged(cmd: str, is_root: bool) -> str:
    return cmd if is_root else f"sudo -n sh -c {q(cmd)}"


def wait_healthy(base: str, programs: tuple[DProgram, ...] | list[DProgram]) -> str:
    """A shell snippet: poll each health check until it passes; on timeout print the log tail, exit 1."""
    parts = []
    for p in programs:
        if not p.health:
            continue
        log = q(f"{base}/logs/{p.name}.log")
        parts.append(
            f"i=0; until sh -c {q(p.health)} >/dev/null 2>&1; do i=$((i+1)); "
            f"if [ $i -gt {HEALTH_TIMEOUT * 5} ]; then echo {q(p.name + ' is not healthy after ' + str(HEALTH_TIMEOUT) + ' s; its log ends:')} >&2; "
            f"tail -n 15 {log} >&2; exit 1; fi; sleep 0.2; done"
        )
    return "; ".join(parts) or "true"


def _dirs(r: Remote, d: Desired, op: Op, stack_name: str) -> None:
    cmds = [f"mkdir -p -- {q(d.base)}"]
    for dd, _action in op.data:
        path = q(f"{d.base}/{dd.path}")
        cmds.append(f"mkdir -p -- {path} && chmod {dd.mode:04o} {path}")
        if dd.owner != d.user:
            cmds.append(f"chown -- {q(dd.owner)}: {path}")
    cmds.append(f"printf '%s\\n' {q(stack_name)} > {q(d.base + '/.devkit-stack')}")
    r.run(" && ".join(cmds), op.id)


def _venv(r: Remote, d: Desired, f: Facts, v: DVenv, op: str) -> None:
    venv = f"{d.base}/venvs/{v.name}"
    cons = f"{venv}/devkit-constraints.txt"
    lines = " ".join(q(c) for c in v.constraints)
    source = ""
    if v.wheels == "controller":
        from devkit.provision import wheels

        local = wheels.download(v, f.python, f.machine, r.name, op)
        wheels.upload(r, local, f"{d.base}/wheels", op)
        source = f"--no-index --find-links {q(d.base + '/wheels')} "
    cmd = (
        f"{q(v.python)} -m venv {q(venv)} && printf '%s\\n' {lines} > {q(cons)} && "
        f"{q(venv + '/bin/python')} -m pip install -q --disable-pip-version-check {source}-c {q(cons)} "
        f"{' '.join(q(x) for x in v.requirements)} && printf '%s\\n' {q(v.spec)} > {q(venv + '/.devkit-spec')}"
    )
    r.run(cmd, op)


def _init(r: Remote, d: Desired, i: DInit, op: str) -> None:
    marker = q(f"{d.base}/state/init/{i.id}.done")
    wrap = lambda c: as_user(c, i.user, d.user, d.is_root)  # noqa: E731
    steps = [f"cd {q(d.base)}"]
    body = wrap(i.run)
    if i.unless:
        body = f"{{ {wrap(i.unless)} >/dev/null 2>&1 || {body}; }}"
    steps.append(body)
    steps.append(
        f"{{ {wrap(i.verify)} || {{ echo {q('verify failed: ' + i.verify)} >&2; exit 97; }}; }}"
    )
    steps.append(f"touch {marker}")
    r.run(" && ".join(steps), op, display=i.run)


def _programs(r: Remote, d: Desired, op: Op, applied: dict[str, str]) -> None:
    b = d.base
    if op.id == "supervisord":
        progs: tuple[DProgram, ...] = op.data
        if op.action == "reload":
            r.run(supervisor.shutdown(b), op.id)
        r.run(f"cd {q(b)} && {supervisor.start_daemon(b)}", op.id)
        # the socket answers once supervisord is up; status exits 3 while programs are still starting
        r.run(
            f"i=0; until [ -S {q(b + '/' + supervisor.SOCK)} ]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; "
            f"sleep 0.1; done; {wait_healthy(b, progs)}",
            op.id,
        )
        applied.clear()
        applied.update({p.name: p.hash for p in progs})
        return
    name = op.id.split(":", 1)[1]
    if op.action == "remove":
        r.run(
            f"rm -f -- {q(b + '/supervisor/programs/' + name + '.conf')} && {supervisor.ctl(b, 'reread')} "
            f">/dev/null && {supervisor.ctl(b, 'update', name)}",
            op.id,
        )
        applied.pop(name, None)
        return
    p: DProgram = op.data
    verb = {
        "update": f"{supervisor.ctl(b, 'reread')} >/dev/null && {supervisor.ctl(b, 'update', name)}",
        "restart": supervisor.ctl(b, "restart", name),
        "start": supervisor.ctl(b, "start", name),
    }[op.action]
    if op.action == "update":
        # update does nothing for an unchanged program that is merely stopped
        verb += f" && {{ {supervisor.ctl(b, 'start', name)} >/dev/null 2>&1 || true; }}"
    r.run(f"{verb} && {{ {wait_healthy(b, [p])}; }}", op.id)
    applied[name] = p.hash


def apply(
    r: Remote,
    d: Desired,
    f: Facts,
    ops: list[Op],
    stack_name: str,
    on_op: Callable[[Op, str], None],
) -> None:
    """Run ops in order; raises RemoteError at the first failure (earlier ops stay applied)."""
    applied = dict(f.applied or {})
    touched = False
    try:
        for op in ops:
            on_op(op, "start")
            if op.id == "packages":
                if not d.is_root and f.sudo is False:
                    raise RemoteError(
                        r.name,
                        op.id,
                        f"sudo failed: installing {' '.join(op.data)} needs root",
                        "sudo -n true",
                        1,
                        hint="Allow passwordless sudo for this user, or log in as root.",
                    )
                pkgs = " ".join(q(p) for p in op.data)
                inst = f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {pkgs}"
                r.run(privileged(f"{inst} || {{ apt-get update -q && {inst}; }}", d.is_root), op.id)
            elif op.id == "dirs":
                _dirs(r, d, op, stack_name)
            elif op.id == "traverse":
                r.run(" && ".join(f"chmod o+x -- {q(p)}" for p in op.data), op.id)
            elif op.id.startswith("secret:"):
                r.write(
                    f"{d.base}/secrets/{op.data}", d.secrets[op.data].encode() + b"\n", 0o600, op.id
                )
            elif op.id.startswith("venv:"):
                _venv(r, d, f, op.data, op.id)
            elif op.id.startswith("file:"):
                df = op.data
                owner = df.owner if df.owner != d.user else ""
                r.write(f"{d.base}/{df.dest}", df.content.encode(), df.mode, op.id, owner)
            elif op.id.startswith("init:"):
                _init(r, d, op.data, op.id)
            elif op.id == "supervisord" or op.id.startswith("program:"):
                touched = True
                _programs(r, d, op, applied)
            else:
                raise AssertionError(op.id)
            on_op(op, "done")
    finally:
        if touched:
            try:
                r.write(
                    f"{d.base}/state/programs.json",
                    json.dumps(applied, sort_keys=True).encode(),
                    0o644,
                    "state",
                )
            except RemoteError:
                pass  # connection gone: the next run sees the old hashes and restarts what it must
