"""supervisord: its config rendered from the stack's programs, and the commands that drive it.

supervisord comes from PyPI into a venv under the base dir; each program has its own include file, so a
change to one service rewrites only that file and `supervisorctl update` restarts only that program.
"""

from __future__ import annotations

from typing import NamedTuple

from devkit.provision.ssh.command import Command, join, q, sh
from devkit.provision.stack.layout import PIDFILE, SERVICES, SOCK, SUPERVISOR_CONF, Layout

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


def _ini(value: str) -> str:
    # supervisord's config parser interpolates %(name)s, so a literal % must be doubled
    if "\n" in value:
        raise ValueError(f"newline in a supervisord value: {value!r}")
    return value.replace("%", "%%")


def daemon_conf(lay: Layout, stack: str) -> str:
    base = _ini(lay.base)
    return (
        "; written by devkit: do not edit, re-run `devkit provision` instead\n"
        f"[unix_http_server]\nfile={base}/{SOCK}\nchmod=0700\n\n"
        f"[supervisord]\nlogfile={base}/logs/supervisord.log\npidfile={base}/{PIDFILE}\n"
        f"childlogdir={base}/logs\ndirectory={base}\nidentifier=devkit-{stack}\n"
        # what the services write (logs, data) is not for other users to read
        "umask=027\n\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        f"[supervisorctl]\nserverurl=unix://{base}/{SOCK}\n\n"
        # relative to this file's directory: supervisord splits `files` on whitespace
        "[include]\nfiles=programs/*.conf\n"
    )


def program_conf(lay: Layout, p: Program) -> str:
    lines = [
        f"[program:{p.name}]",
        f"command={_ini(p.command)}",
        f"directory={_ini(p.directory or lay.base)}",
    ]
    if p.user:
        lines.append(f"user={_ini(p.user)}")
    if p.environment:
        env = ",".join(
            f'{k}="{_ini(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
            for k, v in sorted(p.environment.items())
        )
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
        f"stdout_logfile={_ini(lay.log(p.name))}",
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
    on a crash or a timeout the last lines of the program's log are printed."""
    if not health:
        return sh("true")
    log = q(lay.log(name))
    late = f"{name} is not healthy after {HEALTH_TIMEOUT} s; the last lines of its log:"
    return sh(
        f"end=$(( $(date +%s) + {HEALTH_TIMEOUT} )); n=0; first=; until sh -c",
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
        'if [ "$(date +%s)" -ge "$end" ]; then echo',
        q(late),
        ">&2;",
        _last_lines(log),
        "; exit 1; fi; sleep 0.2; done",
    )


def start(lay: Layout, name: str, health: str, verb: str = "start") -> Command:
    """`start` / `restart` (stop first: supervisord refuses to start a program it is still
    retrying), `ensure` (start unless running) or `status`; then wait until healthy."""
    if verb in ("start", "restart"):
        go = sh("{", ctl(lay, "stop", name), ">/dev/null 2>&1 || true; };", ctl(lay, "start", name))
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
