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
HEALTH_TIMEOUT = 120


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
    """A shell snippet: poll each health check until it passes. A program that dies (supervisord
    gives up, or restarts it under a new pid) fails at once, and on a crash or a timeout the
    snippet prints the last lines of the program's log."""
    parts = []
    for p in programs:
        if not p.health:
            continue
        log = q(f"{base}/logs/{p.name}.log")
        crashed = (
            f"{{ echo {q(p.name + ' crashed on start; the last lines of its log:')} >&2; "
            f"tail -n 20 {log} >&2; exit 1; }}"
        )
        parts.append(
            f"i=0; first=; until sh -c {q(p.health)} >/dev/null 2>&1; do i=$((i+1)); "
            f"if [ $((i % 10)) -eq 1 ]; then st=$({supervisor.ctl(base, 'status', p.name)} 2>&1); "
            f'case "$st" in *FATAL*|*EXITED*|*BACKOFF*|*STOPPED*) {crashed};; esac; '
            f"pid=$(printf '%s' \"$st\" | sed -n 's/.* pid \\([0-9]*\\),.*/\\1/p'); "
            f'[ -z "$first" ] && first=$pid; [ -n "$pid" ] && [ "$pid" != "$first" ] && {crashed}; fi; '
            f"if [ $i -gt {HEALTH_TIMEOUT * 5} ]; then echo {q(p.name + ' is not healthy after ' + str(HEALTH_TIMEOUT) + ' s; the last lines of its log:')} >&2; "
            f"tail -n 20 {log} >&2; exit 1; fi; sleep 0.2; done"
        )
    return "; ".join(parts) or "true"


def start_program(base: str, p: DProgram, verb: str = "start") -> str:
    """`supervisorctl start|restart NAME` (or `ensure`: start unless running, or `status`), then
    wait until healthy; a spawn error or a crash shows the last lines of the log."""
    log = q(f"{base}/logs/{p.name}.log")
    if verb in ("start", "restart"):
        # stop first: supervisord refuses to start a program it is still retrying (BACKOFF)
        stop = supervisor.ctl(base, "stop", p.name)
        verb_cmd = f"{{ {stop} >/dev/null 2>&1 || true; }}; {supervisor.ctl(base, 'start', p.name)}"
    elif verb == "ensure":  # start unless it is running already
        status = supervisor.ctl(base, "status", p.name)
        verb_cmd = f"{{ {supervisor.ctl(base, 'start', p.name)} || {status}; }}"
    else:
        verb_cmd = supervisor.ctl(base, verb, p.name)
    return (
        f"{{ {verb_cmd} >/dev/null 2>&1 || "
        f"{{ echo {q(p.name + ' crashed on start; the last lines of its log:')} >&2; "
        f"tail -n 20 {log} >&2; exit 1; }}; }} && {{ {wait_healthy(base, [p])}; }}"
    )


def check_interpreters(r: Remote, d: Desired, ops: list[Op]) -> None:
    """Before anything changes: every venv that will be built has a suitable Python with venv."""
    new = [op.data for op in ops if op.id.startswith("venv:")]
    installing = next((op.data for op in ops if op.id == "packages"), ())
    checks = []
    for v in new:
        py, want = q(v.python), v.python_version
        steps = [f"if [ ! -x {py} ]; then echo {q(f'{v.name}: {v.python} not found')}; exit 3; fi"]
        if want:
            ver = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
            steps.append(
                f'v=$({py} -I -c {q(ver)}); case "$v" in {q(want)}|{q(want)}.*) ;; '
                f'*) echo {q(f"{v.name}: {v.python} is Python")} "$v"; exit 3;; esac'
            )
        if "python3-venv" not in installing:
            steps.append(
                f"{py} -I -c 'import ensurepip' >/dev/null 2>&1 || "
                f"{{ echo {q(f'{v.name}: {v.python} lacks the venv module (ensurepip)')}; exit 3; }}"
            )
        checks.append("; ".join(steps))
    if not checks:
        return
    res = r.run("; ".join(checks), "python", check=False)
    if res.rc != 0:
        line = (res.stdout.strip().splitlines() or ["no suitable Python"])[0]
        v = next((x for x in new if line.startswith(x.name + ":")), new[0])
        need = f"; it needs Python {v.python_version}" if v.python_version else ""
        raise RemoteError(
            r.name,
            "python",
            f"venv {line}{need}",
            hint=v.python_hint or "Install Python with its venv module on the host.",
        )


def _dirs(r: Remote, d: Desired, op: Op, stack_name: str) -> None:
    cmds = [f"mkdir -p -- {q(d.base)}"]
    for dd, _action in op.data:
        path = q(f"{d.base}/{dd.path}")
        cmds.append(f"mkdir -p -- {path} && chmod {dd.mode:04o} {path}")
        if dd.owner != d.user:
            cmds.append(f"chown -- {q(dd.owner)}: {path}")
    cmds.append(f"printf '%s\\n' {q(stack_name)} > {q(d.base + '/.devkit-stack')}")
    r.run(" && ".join(cmds), op.id)


def _venv(r: Remote, d: Desired, f: Facts, v: DVenv, op: str, wheelhouse: str = "") -> None:
    venv = f"{d.base}/venvs/{v.name}"
    cons = f"{venv}/devkit-constraints.txt"
    lines = " ".join(q(c) for c in v.constraints)
    source = ""
    if v.wheels == "controller" or wheelhouse:
        from devkit.provision import wheels

        local = wheels.download(v, f.python, f.machine, r.name, op, wheelhouse)
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
    steps.append(f"printf '%s\\n' {q(i.hash)} > {marker}")
    r.run(" && ".join(steps), op, display=i.run)


def _programs(r: Remote, d: Desired, op: Op, applied: dict[str, str]) -> None:
    b = d.base
    if op.id == "supervisord":
        if op.action == "reload":
            r.run(supervisor.shutdown(b), op.id)
        # programs do not autostart: each gets its own op, in order, after its init steps
        r.run(
            f"cd {q(b)} && {supervisor.start_daemon(b)} && i=0; "
            f"until [ -S {q(b + '/' + supervisor.SOCK)} ]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; "
            "sleep 0.1; done",
            op.id,
        )
        applied.clear()
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
    if op.action == "update":
        # `update` restarts a changed program; an unchanged or new one is then started
        cmd = (
            f"{supervisor.ctl(b, 'reread')} >/dev/null && {supervisor.ctl(b, 'update', name)} "
            f">/dev/null && {{ {supervisor.ctl(b, 'start', name)} >/dev/null 2>&1 || true; }} && "
            f"{start_program(b, p, 'status')}"
        )
    else:
        cmd = start_program(b, p, "restart" if op.action == "restart" else "start")
    try:
        r.run(cmd, op.id)
    except RemoteError as exc:
        first, _, rest = exc.stderr_tail.partition("\n")
        if "crashed on start" in first or "is not healthy" in first:
            raise RemoteError(
                exc.host,
                exc.op,
                first.rstrip(":"),
                f"supervisorctl {op.action} {name}",
                exc.rc,
                rest,
                hint=f"See the whole log: devkit logs {r.name} {name}",
            ) from None
        raise
    applied[name] = p.hash


def apply(
    r: Remote,
    d: Desired,
    f: Facts,
    ops: list[Op],
    stack_name: str,
    on_op: Callable[[Op, str], None],
    wheelhouse: str = "",
) -> None:
    """Run ops in order; raises RemoteError at the first failure (earlier ops stay applied)."""
    applied = dict(f.applied or {})
    touched = False
    check_interpreters(r, d, ops)
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
                _venv(r, d, f, op.data, op.id, wheelhouse)
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
