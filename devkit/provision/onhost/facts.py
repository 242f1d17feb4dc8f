"""What runs ON THE HOST to gather facts: stdlib only, Python 3.7+, no devkit imports.

The facts script is this module's source followed by each resource kind's `collect` function (read
with inspect.getsource), so a kind keeps its fact collector beside its plan; the collectors call the
helpers below. One process, one round trip per host: `python3 -I -S -c SCRIPT REQUEST` prints JSON.
"""
# ruff: noqa: UP021, UP031  (old-Python spellings on purpose: remote hosts may run 3.7)

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time


def owner(st):
    try:
        return pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        return str(st.st_uid)


def stat_of(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"mode": "%04o" % (st.st_mode & 0o7777), "owner": owner(st)}


def file_fact(path):
    info = stat_of(path)
    if info is None:
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(65536), b""):
                h.update(chunk)
    except OSError as exc:
        info["error"] = str(exc)
    info["sha256"] = h.hexdigest()
    return info


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def run(cmd, timeout=10, shell=False):
    """(exit code, combined output) of a command; 127 when it cannot be started."""
    try:
        p = subprocess.run(
            cmd,
            shell=shell,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            universal_newlines=True,
        )
    except subprocess.TimeoutExpired:
        return 124, "timed out after %d s" % timeout
    except OSError as exc:
        return 127, str(exc)
    return p.returncode, p.stdout


def os_release():
    info = {}
    for line in (read("/etc/os-release") or "").splitlines():
        k, _, v = line.partition("=")
        info[k] = v.strip('"')
    return {
        "id": info.get("ID", ""),
        "version": info.get("VERSION_ID", ""),
        "codename": info.get("VERSION_CODENAME", ""),
        "name": info.get("PRETTY_NAME", ""),
    }


def listening():
    """TCP ports in LISTEN state in this network namespace (from /proc, no tools needed)."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in (read(name) or "").splitlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "0A":
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def docker_engine():
    """The host's Docker engine when it answers a ping (what `docker info` needs), else ""."""
    path = "/var/run/docker.sock"
    if not os.path.exists(path):
        return ""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(3)
        s.connect(path)
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        answer = s.recv(4096)
        s.close()
    except OSError:
        return ""
    return "unix://" + path if answer.startswith(b"HTTP/1.") and b" 200 " in answer[:20] else ""


def postgres_versions(known=""):
    """The PostgreSQL majors installed (Debian's layout), and the one `postgresql` would install:
    `known` when an earlier run found it (asking apt-cache takes most of a second)."""
    import glob

    have = sorted(
        (p.split("/")[4] for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")),
        key=lambda v: [int(x) for x in v.split(".") if x.isdigit()],
    )
    candidate = known
    if not have and not known:
        _, out = run(["apt-cache", "depends", "postgresql"])
        for line in out.splitlines():
            word = line.strip().rpartition(" ")[2]
            if word.startswith("postgresql-") and word[11:].isdigit():
                candidate = word[11:]
                break
    return have, candidate


def pythons():
    """The Python 3 minor versions the distribution's python3.X binaries give."""
    import glob

    found = {p.rsplit("python", 1)[1] for p in glob.glob("/usr/bin/python3.*")}
    return sorted((v for v in found if v.replace(".", "").isdigit()), key=lambda v: int(v[2:]))


def filesystem():
    """Which files this host sees: its kernel's boot id and its mount namespace. Hosts with the
    same see one filesystem (network-namespace hosts of one machine); "" when unknown."""
    boot = (read("/proc/sys/kernel/random/boot_id") or "").strip()
    try:
        ns = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return ""
    return "%s %s" % (boot, ns) if boot else ""


CANDIDATE = "state/postgres-candidate"  # the major apt would install, once apt knew it


def _known_candidate(base):
    """What an earlier run's apt-cache said, kept here by the facts themselves: not a file the run
    renders, since on a fresh host apt knows no candidate until the packages step updates its
    lists, and a rendered record would change on the second run."""
    return (read(os.path.join(base, CANDIDATE)) or "").strip()


def _keep_candidate(base, candidate):
    path = os.path.join(base, CANDIDATE)
    if not candidate or not os.path.isdir(os.path.dirname(path)):
        return
    try:
        with open(path + ".tmp", "w") as f:
            f.write(candidate + "\n")
        os.replace(path + ".tmp", path)
    except OSError:
        pass  # asked again next run


def host_info(base):
    uid = os.getuid()
    # what the host had when the stack was first provisioned is kept: a Docker engine that
    # appears later must not flip the stack's choice (state/probes.json, layout.PROBES); the
    # PostgreSQL apt would install is asked once it is known (CANDIDATE)
    try:
        probes = json.loads(read(os.path.join(base, "state/probes.json")) or "{}")
    except ValueError:
        probes = {}
    if not isinstance(probes, dict):
        probes = {}
    docker_now = docker_engine()
    known = _known_candidate(base)
    pg_have, pg_candidate = postgres_versions(known)
    if pg_candidate != known:
        _keep_candidate(base, pg_candidate)
    return {
        "user": pwd.getpwuid(uid).pw_name,
        "uid": uid,
        "home": os.path.expanduser("~"),
        "base": base,
        "base_real": os.path.realpath(base),
        "os": os_release(),
        "python": sys.version.split()[0],
        "machine": os.uname().machine,
        "listening": listening(),
        "docker": probes.get("docker", docker_now),
        "docker_now": docker_now,
        "init": (read("/proc/1/comm") or "").strip(),
        "postgres": pg_have,
        "postgres_candidate": pg_candidate if not pg_have else "",
        "pythons": pythons(),
        # the address this host was reached at (SSH_CONNECTION's server side): where the other
        # hosts of a cluster reach it too
        "address": [*(os.environ.get("SSH_CONNECTION") or "").split(), "", "", ""][2],
        "filesystem": filesystem(),
        "time": time.time(),
    }


def source_facts(read_file):
    """What devkit reads of a source checkout (on the host) or of a source's ref (on this machine,
    stack/source.py): the CPython its pants.toml asks for, its VERSION, and a hash of its pins
    (requirements.txt and the lock), which the dev venv follows. read_file(name) -> text or None."""
    pants = read_file("pants.toml") or ""
    found = re.search(r'interpreter_constraints\s*=\s*\[\s*"CPython==([0-9.]+)"', pants)
    h = hashlib.sha256()
    for name in ("requirements.txt", "python.lock"):
        h.update(name.encode() + b"\0" + (read_file(name) or "").encode() + b"\0")
    return {
        "python": found.group(1) if found else "",
        "version": (read_file("VERSION") or "").strip(),
        "pins": h.hexdigest()[:16],
    }


def main(collectors):
    req = json.loads(sys.argv[1])
    base = req["base"]
    if base == "@devkit" or base.startswith("@devkit/"):  # devkit's own folder (layout.HOME)
        base = ("/var/lib/devkit" if os.getuid() == 0 else "~/.devkit") + base[len("@devkit") :]
    base = os.path.abspath(os.path.expanduser(base))
    out = {"host": host_info(base), "kinds": {}}
    for name, kind_req in req["kinds"].items():
        out["kinds"][name] = collectors[name](kind_req, base)
    sys.stdout.write(json.dumps(out))
