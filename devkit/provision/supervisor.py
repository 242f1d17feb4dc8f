"""supervisord: its config rendered from the stack's programs, and the commands that drive it over SSH.

supervisord comes from PyPI into a venv under the base dir; each program has its own include file, so a
change to one service rewrites only that file and `supervisorctl update` restarts only that program.
"""

from __future__ import annotations

import shlex

VENV = "venvs/supervisor"
CONF = "supervisor/supervisord.conf"
SOCK = "run/supervisor.sock"
PIDFILE = "run/supervisord.pid"


def _ini(value: str) -> str:
    # supervisord's config parser interpolates %(name)s, so a literal % must be doubled
    if "\n" in value:
        raise ValueError(f"newline in a supervisord value: {value!r}")
    return value.replace("%", "%%")


def daemon_conf(base: str, stack: str) -> str:
    return (
        "; written by devkit: do not edit, re-run `devkit provision` instead\n"
        f"[unix_http_server]\nfile={_ini(base)}/{SOCK}\nchmod=0700\n\n"
        f"[supervisord]\nlogfile={_ini(base)}/logs/supervisord.log\npidfile={_ini(base)}/{PIDFILE}\n"
        f"childlogdir={_ini(base)}/logs\ndirectory={_ini(base)}\nidentifier=devkit-{stack}\n\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        f"[supervisorctl]\nserverurl=unix://{_ini(base)}/{SOCK}\n\n"
        # relative to this file's directory: supervisord splits `files` on whitespace
        "[include]\nfiles=programs/*.conf\n"
    )


def program_conf(
    name: str,
    base: str,
    command: str,
    environment: dict[str, str],
    directory: str,
    user: str,
    priority: int,
    startsecs: int,
    stopsignal: str,
    stopwaitsecs: int,
    stopasgroup: bool = True,
) -> str:
    lines = [
        f"[program:{name}]",
        f"command={_ini(command)}",
        f"directory={_ini(directory or base)}",
    ]
    if user:
        lines.append(f"user={_ini(user)}")
    if environment:
        env = ",".join(
            f'{k}="{_ini(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
            for k, v in sorted(environment.items())
        )
        lines.append(f"environment={env}")
    lines += [
        f"priority={priority}",
        f"startsecs={startsecs}",
        f"stopsignal={stopsignal}",
        f"stopwaitsecs={stopwaitsecs}",
        # devkit starts programs itself, one at a time in priority order, each after the services
        # it needs are healthy and its one-time init steps have run
        "autostart=false",
        "autorestart=true",
        "startretries=3",
        f"stopasgroup={'true' if stopasgroup else 'false'}",
        f"killasgroup={'true' if stopasgroup else 'false'}",
        "redirect_stderr=true",
        f"stdout_logfile={_ini(base)}/logs/{name}.log",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
    ]
    return "\n".join(lines) + "\n"


def ctl(base: str, *args: str) -> str:
    """A `supervisorctl -c CONF ARGS` command line, every part quoted."""
    # `python -m`, not bin/supervisorctl: a script's shebang breaks on a base dir with spaces or quotes
    py = f"{base}/{VENV}/bin/python"
    parts = (py, "-m", "supervisor.supervisorctl", "-c", f"{base}/{CONF}", *args)
    return " ".join(shlex.quote(x) for x in parts)


def start_daemon(base: str) -> str:
    py = f"{base}/{VENV}/bin/python"
    parts = (py, "-m", "supervisor.supervisord", "-c", f"{base}/{CONF}")
    return " ".join(shlex.quote(x) for x in parts)


def shutdown(base: str) -> str:
    """Stop supervisord and wait (by its pid file, never by name) until it has exited."""
    pidfile = shlex.quote(f"{base}/{PIDFILE}")
    return (
        f'pid=$(cat {pidfile} 2>/dev/null) || exit 0; kill -0 "$pid" 2>/dev/null || exit 0; '
        f"{ctl(base, 'shutdown')} >/dev/null; "
        'for i in $(seq 1 1200); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done; '
        'echo "supervisord (pid $pid) did not exit in 120 s" >&2; exit 1'
    )
