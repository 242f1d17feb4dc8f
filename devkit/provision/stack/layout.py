"""Where a stack's state lives on a host: one base dir per stack, and the only module that spells
the paths inside it. Relative paths (`REL_*`) go into fact requests; `Layout` gives absolute ones."""

from __future__ import annotations

import posixpath
import re
from typing import NamedTuple

from devkit.errors import DevkitError

STACK_MARKER = ".devkit-stack"  # names the stack a base dir belongs to; purge checks it
# how devkit came to the base dir: `created` (purge may remove it) or `adopted` (an empty folder
# that was there: purge leaves it); a base dir holding files of someone else's is never taken
ORIGIN = ".devkit-origin"
CREATED, ADOPTED = "created", "adopted"
SERVICES = "state/services.json"  # health checks and ports as last provisioned (for `status`)
APPLIED = "state/programs.json"  # each program's config hash when it was last (re)started
RECHECK = "state/recheck.sh"  # the init steps' rechecks as last run, run with a run's first look
PROBES = "state/probes.json"  # what the host had at the first provision (Docker, PostgreSQL)
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
# what devkit's launcher says of the service it runs (which child serves: onhost/edit/launch.py)
SERVING_DIR = "run/serving"
EDIT_LATENCY = "state/edit-latency.json"  # each service's recent edit-to-serving times

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


# folders a stack's base dir may never be: the plan sets the base dir's mode and owner and makes its
# folders in it, and purge deletes it; so it is a folder of its own, never one of these
SYSTEM_DIRS = frozenset((
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr", "/var",
    "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local",
    "/usr/local/bin", "/usr/local/lib", "/usr/local/sbin", "/usr/local/share", "/usr/sbin",
    "/usr/share", "/usr/src", "/var/backups", "/var/cache", "/var/lib", "/var/lib/docker",
    "/var/local", "/var/lock", "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool",
    "/var/tmp",
))  # fmt: skip
KERNEL_DIRS = ("/proc", "/sys", "/dev")
BASE_DIR_HINT = (
    "A base dir is a folder of its own for the stack, absolute or ~/..., with no `..`: "
    "e.g. ~/stacks/{host} or /srv/devkit/{host}; not /, a system folder or a home dir itself."
)


def base_dir_problem(path: str) -> str:
    """What makes `path` no base dir ("" when it is one): a folder devkit may make, change the mode
    of, and delete with `teardown --purge`. Pure: checks the text, with {host} as it stands."""
    if not path:
        return "is empty"
    if re.search(r"[\x00-\x1f\x7f]", path):
        return "has a control character"
    if not (path.startswith("/") or path == "~" or path.startswith("~/")):
        return "is not absolute (nor ~/...)"
    if ".." in path.split("/"):
        return "has a `..` segment"
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = norm[1:]
    if re.fullmatch(r"~|/home/[^/]+|/root", norm):
        return "is a home dir itself"
    if norm in (ROOT_HOME, USER_HOME) or norm.endswith("/.devkit"):
        return "is devkit's own folder, which holds a folder per stack"
    if norm in SYSTEM_DIRS:
        return "is a system folder"
    if any(norm.startswith(k + "/") for k in KERNEL_DIRS):
        return "is on a kernel filesystem"
    return ""


def check_base_dir(path: str, where: str) -> str:
    """`path`, or one line naming where it came from and why it is no base dir."""
    problem = base_dir_problem(path)
    if problem:
        raise DevkitError(f"{where} {path!r} {problem}", BASE_DIR_HINT)
    return path


def host_base_problem(base: str, real: str, home: str) -> str:
    """What makes a base dir, as the host resolved it (and with its links followed), no base dir
    there: a system folder, the login user's home or a folder that holds it ("" when fine)."""
    for path in dict.fromkeys((base, real or base)):
        problem = base_dir_problem(path)
        if problem:
            return f"{path} {problem}"
        if home and (path == home or home.startswith(path.rstrip("/") + "/")):
            return f"{path} is the login user's home or holds it ({home})"
    return ""
