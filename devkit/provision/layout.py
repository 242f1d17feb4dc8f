"""Where a stack's state lives on a host: one base dir per stack, and the only module that spells
the paths inside it. Relative paths (`REL_*`) go into fact requests; `Layout` gives absolute ones."""

from __future__ import annotations

from typing import NamedTuple

STACK_MARKER = ".devkit-stack"  # names the stack a base dir belongs to; purge checks it
SERVICES = "state/services.json"  # health checks and ports as last provisioned (for `status`)
APPLIED = "state/programs.json"  # each program's config hash when it was last (re)started
SUPERVISOR_VENV = "venvs/supervisor"
SUPERVISOR_CONF = "supervisor/supervisord.conf"
PROGRAMS_DIR = "supervisor/programs"
SOCK = "run/supervisor.sock"
PIDFILE = "run/supervisord.pid"
WHEELS = "wheels"

# every stack gets these (secrets is private), before the stack's own dirs
BUILTIN_DIRS: tuple[tuple[str, int], ...] = (
    *(
        (p, 0o755)
        for p in (
            "etc",
            "data",
            "logs",
            "run",
            "state",
            "state/init",
            "venvs",
            "supervisor",
            PROGRAMS_DIR,
        )
    ),
    ("secrets", 0o700),
)


def secret_rel(name: str) -> str:
    return f"secrets/{name}"


def marker_rel(init_id: str) -> str:
    return f"state/init/{init_id}.done"


def venv_rel(name: str) -> str:
    return f"venvs/{name}"


def venv_spec_rel(name: str) -> str:
    return f"venvs/{name}/.devkit-spec"


def program_conf_rel(name: str) -> str:
    return f"{PROGRAMS_DIR}/{name}.conf"


def log_rel(service: str) -> str:
    return f"logs/{service}.log"


class Layout(NamedTuple):
    base: str  # absolute, as the host resolved it

    def path(self, rel: str = "") -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def secret(self, name: str) -> str:
        return self.path(secret_rel(name))

    def marker(self, init_id: str) -> str:
        return self.path(marker_rel(init_id))

    def venv(self, name: str) -> str:
        return self.path(venv_rel(name))

    def log(self, service: str) -> str:
        return self.path(log_rel(service))

    @property
    def supervisor_python(self) -> str:
        return self.path(f"{SUPERVISOR_VENV}/bin/python")


def default_base(stack_name: str, host_name: str, base_dir: str, sandbox: bool) -> str:
    """The base dir to ask the host for: the user's (with {host}), else ~/.devkit/<stack>; sandboxes
    that share this machine's filesystem get one per sandbox."""
    if base_dir:
        return base_dir.replace("{host}", host_name)
    return f"~/.devkit/{host_name}/{stack_name}" if sandbox else f"~/.devkit/{stack_name}"
