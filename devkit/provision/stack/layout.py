"""Where a stack's state lives on a host: one base dir per stack, and the only module that spells
the paths inside it. Relative paths (`REL_*`) go into fact requests; `Layout` gives absolute ones."""

from __future__ import annotations

from typing import NamedTuple

STACK_MARKER = ".devkit-stack"  # names the stack a base dir belongs to; purge checks it
SERVICES = "state/services.json"  # health checks and ports as last provisioned (for `status`)
APPLIED = "state/programs.json"  # each program's config hash when it was last (re)started
PROBES = "state/probes.json"  # what the host had at the first provision (its Docker engine)
SUPERVISOR_VENV = "venvs/supervisor"
SUPERVISOR_CONF = "supervisor/supervisord.conf"
PROGRAMS_DIR = "supervisor/programs"
START_ALL = "supervisor/start-all.sh"  # every program in order, each healthy before the next
SOCK = "run/supervisor.sock"
PIDFILE = "run/supervisord.pid"
WHEELS = "wheels"
CACHE = "cache"  # what devkit sends the host to use (a source bundle)
# the edit loop: its rules as provisioned and its host side (onhost/edit.py), run by the watcher
EDIT_RULES = "supervisor/edit.json"
EDIT_SCRIPT = "supervisor/devkit-edit.py"

# every stack gets these, before the stack's own dirs; others may pass through etc, data and run
# (a service running as another user, such as postgres, reads its files there) but list nothing
BUILTIN_DIRS: tuple[tuple[str, int], ...] = (
    ("etc", 0o751),
    ("data", 0o751),
    ("logs", 0o750),
    ("run", 0o751),
    ("state", 0o750),
    ("state/init", 0o750),
    ("venvs", 0o755),
    ("supervisor", 0o750),
    (PROGRAMS_DIR, 0o750),
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


# devkit's own folder on a host, resolved there: /var/lib/devkit for root (never under /root, which
# the stack's other users, such as `postgres`, must not be given a way into), else ~/.devkit
HOME = "@devkit"
ROOT_HOME, USER_HOME = "/var/lib/devkit", "~/.devkit"
PERMISSIONS = "state/permissions.json"  # modes and ACLs devkit changed outside the base dir


def default_base(stack_name: str, host_name: str, base_dir: str, sandbox: bool) -> str:
    """The base dir to ask the host for: the user's (with {host}), else devkit's own folder
    (@devkit/<stack>); sandboxes that share this machine's filesystem get one per sandbox."""
    if base_dir:
        return base_dir.replace("{host}", host_name)
    return f"{HOME}/{host_name}/{stack_name}" if sandbox else f"{HOME}/{stack_name}"


def on_host(base: str, uid: int, home: str) -> str:
    """A base dir as the host spells it (what the facts script does with @devkit and ~)."""
    if base == HOME or base.startswith(HOME + "/"):
        base = (ROOT_HOME if uid == 0 else USER_HOME) + base[len(HOME) :]
    if base == "~" or base.startswith("~/"):
        base = home + base[1:]
    return base
