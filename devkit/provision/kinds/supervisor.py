"""supervisord: its config rendered from the stack's programs, and the commands that drive it.

supervisord comes from PyPI into a venv under the base dir; each program has its own include file, so a
change to one service rewrites only that file and `supervisorctl update` restarts only that program.
"""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

from devkit.provision.ssh.command import Command, join, q, sh
from devkit.provision.stack.layout import PIDFILE, SERVICES, SOCK, SUPERVISOR_CONF, Layout
from devkit.provision.stack.render import UnsafeValue, ini, one_line

HEALTH_TIMEOUT = 120  # seconds a program may take to pass its health check after it starts


class Program(NamedTuple):
    """What supervisord runs for one service (rendered)."""

    name: str
    command: str
    environment: dict[str, str]
    directory: str
    user: str  # "" = the login user
    priority: int
    startsecs: int
    stopsignal: str
    stopwaitsecs: int
    stopasgroup: bool = True  # False for daemons that stop their own children (dockerd)


# supervisord's config, as its parser reads it (supervisor.options.UnhosedConfigParser): a
# configparser whose inline comments start at whitespace then ; or #, with no escape for them; then
# `%(here)s` is replaced by the config file's folder, as is; then each value is %-expanded (the
# program log's name twice). A value is written as is where it can be, else refused before anything
# changes on the host, except a path inside the base dir: written from `%(here)s`.
CONF = "supervisord's config"
HERE = "%(here)s"


def value(text: str, expansions: int = 1) -> str:
    """A raw value supervisord reads back as `text`."""
    out = ini(text, CONF, expansions)
    if HERE in out:
        why = f"has `{HERE}`, which supervisord replaces in {CONF}"
        raise UnsafeValue(why, text, lambda v: value(v, expansions))
    return out


def path(lay: Layout, p: str, up: str, expansions: int = 1) -> str:
    """A path, as is, or (a base dir with `;` or `#` after whitespace, or whitespace at its end)
    relative to `%(here)s`, the folder of the file it is in, `up` below the base dir."""
    try:
        return value(p, expansions)
    except UnsafeValue as exc:
        inside = p == lay.base or p.startswith(lay.base + "/")
        if not inside or re.search(r"[\x00-\x1f\x7f]", lay.base):
            raise
        if "%" in lay.base:  # replaced as is before the %-expansion, `%(here)s` cannot hold it
            why = f"{exc.reason}, and a %, so it cannot be written from {HERE} either"
            raise UnsafeValue(why, lay.base, lambda v: value(v, expansions)) from None
        return HERE + up + value(p[len(lay.base) :], expansions)


def _word(arg: str) -> str:
    """One argument of a command as supervisord splits it (shlex, POSIX): shell-quoted, with '' put
    between whitespace and ; or #, and between % and (, inside the quotes, where they would start
    a comment or a `%(here)s`."""
    return re.sub(r"(?<=[\s%])(?=[;#(])", "''", shlex.quote(arg))


def _split(line: str) -> list[str]:
    """A command line's arguments, as supervisord splits it."""
    text = one_line(line, CONF)
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UnsafeValue(f"does not split into arguments ({exc})", line, _split) from None
    if not argv:
        raise UnsafeValue("is empty", line)
    return argv


def command(argv: list[str]) -> str:
    """A program's command line, written so supervisord splits it into these arguments."""
    return value(" ".join(_word(a) for a in argv))


def _env_value(text: str) -> str:
    """A value of `environment=`: supervisord splits it with a non-POSIX shlex (no escapes) and
    strips quotes from its ends, so it is quoted with the quote it does not hold."""
    quote = '"' if '"' not in text else "'"
    if quote in text or text[:1] in ("'", '"') or text[-1:] in ("'", '"'):
        raise UnsafeValue(f"cannot be quoted in {CONF}'s environment", text)
    return value(quote + text + quote)


def environment(env: dict[str, str]) -> tuple[str, list[str]]:
    """`environment=` for the values it can hold, and `env NAME=VALUE` words to run the command
    with for the others (in the command line, any value but a newline is a word)."""
    held, rest = [], []
    for k, v in sorted(env.items()):
        try:
            held.append(f"{k}={_env_value(v)}")
        except UnsafeValue:
            rest.append(f"{k}={one_line(v, CONF)}")
    return ",".join(held), rest


def daemon_conf(lay: Layout, stack: str) -> str:
    def at(rel: str) -> str:
        return path(lay, lay.path(rel), "/..")

    return (
        "; written by devkit: do not edit, re-run `devkit provision` instead\n"
        f"[unix_http_server]\nfile={at(SOCK)}\nchmod=0700\n\n"
        f"[supervisord]\nlogfile={at('logs/supervisord.log')}\npidfile={at(PIDFILE)}\n"
        f"childlogdir={at('logs')}\ndirectory={at('')}\nidentifier=devkit-{value(stack)}\n"
        # what the services write (logs, data) is not for other users to read
        "umask=027\n\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        f"[supervisorctl]\nserverurl=unix://{at(SOCK)}\n\n"
        # relative to this file's directory: supervisord splits `files` on whitespace
        "[include]\nfiles=programs/*.conf\n"
    )


def _directory(lay: Layout, folder: str) -> list[str]:
    """The folder a program starts in. The base dir written from `%(here)s` would be reached
    through supervisor/, which a program run as another user (postgres) cannot enter: such a
    program starts in supervisord's own folder instead, the base dir too (`[supervisord]
    directory`)."""
    try:
        return [f"directory={value(folder or lay.base)}"]
    except UnsafeValue:
        if folder:
            raise
        return []


def program_conf(lay: Layout, p: Program) -> str:
    """A program's include file (in supervisor/programs/: two folders below the base dir)."""
    env, run_with = environment(p.environment)
    argv = _split(p.command)
    if run_with:
        if "=" in argv[0] or argv[0].startswith("-"):
            raise UnsafeValue(f"cannot follow `env` in {CONF} (an = or a leading -)", argv[0])
        argv = ["/usr/bin/env", *run_with, *argv]
    lines = [f"[program:{p.name}]", f"command={command(argv)}", *_directory(lay, p.directory)]
    if p.user:
        lines.append(f"user={value(p.user)}")
    if env:
        lines.append(f"environment={env}")
    group = "true" if p.stopasgroup else "false"
    lines += [
        f"priority={p.priority}",
        f"startsecs={p.startsecs}",
        f"stopsignal={p.stopsignal}",
        f"stopwaitsecs={p.stopwaitsecs}",
        # devkit starts programs itself, one at a time in priority order, each after the services
        # it needs are healthy and its one-time init steps have run
        "autostart=false",
        "autorestart=true",
        "startretries=3",
        f"stopasgroup={group}",
        f"killasgroup={group}",
        "redirect_stderr=true",
        # expanded twice: once as every value, once more as a log file's name
        f"stdout_logfile={path(lay, lay.log(p.name), '/../..', expansions=2)}",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
    ]
    return "\n".join(lines) + "\n"


def ctl(lay: Layout, *args: str) -> Command:
    """`supervisorctl -c CONF ARGS`, every part quoted."""
    # `python -m`, not bin/supervisorctl: a script's shebang breaks on a base dir with spaces or quotes
    py, conf = lay.supervisor_python, lay.path(SUPERVISOR_CONF)
    return sh(q(py), "-m", "supervisor.supervisorctl", "-c", q(conf), *(q(a) for a in args))


def start_daemon(lay: Layout) -> Command:
    """Start supervisord (programs do not autostart) and wait for its socket."""
    py, conf, sock = lay.supervisor_python, lay.path(SUPERVISOR_CONF), lay.path(SOCK)
    return join(
        [
            sh("cd", q(lay.base)),
            # its own log is opened before the config's umask applies: start it under that umask
            sh("umask 027 &&", q(py), "-m", "supervisor.supervisord", "-c", q(conf)),
            sh(
                "i=0; until [ -S",
                q(sock),
                "]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done",
            ),
        ]
    )


def shutdown(lay: Layout) -> Command:
    """Stop supervisord and wait (by its pid file, never by name) until it has exited."""
    pidfile = q(lay.path(PIDFILE))
    return sh(
        "pid=$(cat",
        pidfile,
        '2>/dev/null) || exit 0; kill -0 "$pid" 2>/dev/null || exit 0;',
        ctl(lay, "shutdown"),
        '>/dev/null; for i in $(seq 1 1200); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done;',
        'echo "supervisord (pid $pid) did not exit in 120 s" >&2; exit 1',
    )


def _last_lines(log: str) -> Command:
    """The last lines of a program's log once it has not grown for half a second (at most 3 s): a
    crashed program's last words may still be in supervisord's pipe, or in its own log relay."""
    return sh(
        "was=; for i in 1 2 3 4 5 6 7; do now=$(stat -c %s",
        log,
        '2>/dev/null); [ "$now" = "$was" ] && break; was=$now; sleep 0.5; done; tail -n 20',
        log,
        ">&2",
    )


def _crashed(lay: Layout, name: str) -> Command:
    return sh(
        "{ echo",
        q(f"{name} crashed on start; the last lines of its log:"),
        ">&2;",
        _last_lines(q(lay.log(name))),
        "; exit 1; }",
    )


HEALTH_VAR = '"$health"'  # wait_healthy(..., HEALTH_VAR): the check is in $health at run time


def wait_healthy(lay: Layout, name: str, health: str) -> Command:
    """Poll the health check until it passes, for at most HEALTH_TIMEOUT seconds (by the clock).
    A program that dies (supervisord gives up, or restarts it under a new pid) fails at once, and
    on a crash or a timeout the last lines of the program's log are printed.

    A program still not healthy at the timeout is started once more, with a note of where its
    processes waited left in its log: a start can hang for good on a race of the program's own
    (Backend.AI 23.09's agent, now and then on a loaded machine: its worker stuck on a lock right
    after the fork, before it logs a line), and a second start is what a person would try."""
    if not health:
        return sh("true")
    log = q(lay.log(name))
    late = (
        f"{name} is not healthy after {HEALTH_TIMEOUT} s, started twice; the last lines of its log:"
    )
    again = (
        f"devkit: {name} was not healthy {HEALTH_TIMEOUT} s after it started; starting it once"
        f" more. Its processes {PS_COLUMNS}:"
    )
    return sh(
        f"end=$(( $(date +%s) + {HEALTH_TIMEOUT} )); n=0; first=; again=; until sh -c",
        health if health == HEALTH_VAR else q(health),
        ">/dev/null 2>&1; do n=$((n+1)); if [ $((n % 10)) -eq 1 ]; then st=$(",
        ctl(lay, "status", name),
        '2>&1); case "$st" in *FATAL*|*EXITED*|*BACKOFF*|*STOPPED*)',
        _crashed(lay, name),
        ";; esac;",
        "pid=$(printf '%s' \"$st\" | sed -n 's/.* pid \\([0-9]*\\),.*/\\1/p');",
        '[ -z "$first" ] && first=$pid; [ -n "$pid" ] && [ "$pid" != "$first" ] &&',
        _crashed(lay, name),
        "; fi;",
        'if [ "$(date +%s)" -ge "$end" ] && [ -z "$again" ]; then again=1; {',
        sh("echo", q(again), ";", _ps()),
        "; } >>",
        log,
        "2>&1;",
        _stop_start(lay, name),
        ">/dev/null 2>&1 ||",
        _crashed(lay, name),
        f"; end=$(( $(date +%s) + {HEALTH_TIMEOUT} )); n=0; first=;",
        'elif [ "$(date +%s)" -ge "$end" ]; then echo',
        q(late),
        ">&2;",
        _last_lines(log),
        "; { echo",
        q(f"its processes {PS_COLUMNS}:"),
        ";",
        _ps(),
        "; } >&2; exit 1; fi; sleep 0.2; done",
    )


PS_COLUMNS = "(pid, threads, state, waiting in, command)"  # what _ps() lists of each process


def _ps() -> str:
    """The program's process ($pid) and its children, each with its threads, state and the kernel
    function it waits in: where a start that hangs is stuck. Nothing without ps (procps)."""
    return (
        '{ [ -n "$pid" ] && command -v ps >/dev/null 2>&1 &&'
        ' ps -ww -o pid=,nlwp=,stat=,wchan:24=,args= -p "$pid" --ppid "$pid" || true; }'
    )


def _stop_start(lay: Layout, name: str) -> Command:
    """Stop first (supervisord refuses to start a program it is still retrying), then start."""
    return sh("{", ctl(lay, "stop", name), ">/dev/null 2>&1 || true; };", ctl(lay, "start", name))


def start(lay: Layout, name: str, health: str, verb: str = "start") -> Command:
    """`start` / `restart` (stop first: supervisord refuses to start a program it is still
    retrying), `ensure` (start unless running) or `status`; then wait until healthy."""
    if verb in ("start", "restart"):
        go = _stop_start(lay, name)
    elif verb == "ensure":
        go = sh("{", ctl(lay, "start", name), "||", ctl(lay, "status", name), "; }")
    else:
        go = ctl(lay, verb, name)
    return sh(
        "{",
        go,
        ">/dev/null 2>&1 ||",
        _crashed(lay, name),
        "; } && {",
        wait_healthy(lay, name, health),
        "; }",
    )


def start_all(lay: Layout, names: list[str]) -> str:
    """A script that starts every program, in this order, each healthy before the next, with the
    health checks as last provisioned (state/services.json, read when it runs)."""
    read = (
        "import json, sys; "
        "print(json.load(open(sys.argv[1])).get('health', {}).get(sys.argv[2], ''))"
    )
    services = q(lay.path(SERVICES))
    lines = [
        "#!/bin/sh",
        "# written by devkit: re-run `devkit provision` instead of editing",
        "set -e",
    ]
    for name in names:
        lines.append(
            str(sh("health=$(", q(lay.supervisor_python), "-I -c", q(read), services, q(name), ")"))
        )
        lines.append(str(start(lay, name, HEALTH_VAR, "ensure")))
    return "\n".join(lines) + "\n"
