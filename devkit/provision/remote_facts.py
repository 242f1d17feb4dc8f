"""Runs ON THE REMOTE HOST (stdlib only, Python 3.7+): gathers every fact the plan needs, prints JSON.

Invoked as `python3 -I -S -c <this source> <request json>`; one process, one round trip per host.
Kept free of devkit imports on purpose: its source is shipped as a string.
"""
# ruff: noqa: UP021, UP031, RUF005  (old-Python spellings on purpose: remote hosts may run 3.7)

import hashlib
import json
import os
import pwd
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


def os_release():
    info = {}
    for line in (read("/etc/os-release") or "").splitlines():
        k, _, v = line.partition("=")
        info[k] = v.strip('"')
    return {
        "id": info.get("ID", ""),
        "version": info.get("VERSION_ID", ""),
        "name": info.get("PRETTY_NAME", ""),
    }


def packages(names):
    if not names:
        return {}
    try:
        p = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\n"] + names,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
        )
    except OSError:
        return {n: False for n in names}
    got = dict(line.split("\t", 1) for line in p.stdout.splitlines() if "\t" in line)
    return {n: got.get(n) == "installed" for n in names}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def supervisor(base):
    pid_text = read(os.path.join(base, "run", "supervisord.pid")) or ""
    pid = int(pid_text.strip()) if pid_text.strip().isdigit() else 0
    out = {"running": bool(pid) and alive(pid), "pid": pid, "programs": {}, "error": ""}
    if not out["running"]:
        return out
    import http.client
    import xmlrpc.client

    sock_path = os.path.join(base, "run", "supervisor.sock")

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(10)
            self.sock.connect(sock_path)

    class Transport(xmlrpc.client.Transport):
        def make_connection(self, host):
            return Conn("localhost")

    try:
        proxy = xmlrpc.client.ServerProxy("http://localhost", transport=Transport())
        now = time.time()
        for p in proxy.supervisor.getAllProcessInfo():
            up = int(now - p["start"]) if p["statename"] == "RUNNING" else 0
            out["programs"][p["name"]] = {
                "state": p["statename"],
                "pid": p["pid"],
                "uptime": up,
                "exitstatus": p["exitstatus"],
                "spawnerr": p["spawnerr"],
            }
    except Exception as exc:  # a dead socket is a fact, not a crash
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
    return out


def health(checks):
    out = {}
    for name, cmd in checks.items():
        try:
            p = subprocess.run(
                cmd,
                shell=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=10,
                universal_newlines=True,
            )
            out[name] = {"ok": p.returncode == 0, "output": p.stdout[-300:]}
        except subprocess.TimeoutExpired:
            out[name] = {"ok": False, "output": "health check timed out after 10 s"}
    return out


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


def main():
    req = json.loads(sys.argv[1])
    home = os.path.expanduser("~")
    base = os.path.abspath(os.path.expanduser(req["base"]))
    uid = os.getuid()
    out = {
        "user": pwd.getpwuid(uid).pw_name,
        "uid": uid,
        "home": home,
        "base": base,
        "os": os_release(),
        "python": sys.version.split()[0],
        "machine": os.uname().machine,
    }
    out["base_marker"] = read(os.path.join(base, ".devkit-stack"))
    out["ancestors"] = {}
    d = os.path.dirname(base)
    while d not in ("/", ""):
        out["ancestors"][d] = stat_of(d)
        d = os.path.dirname(d)
    out["packages"] = packages(req.get("packages", []))
    out["dirs"] = {p: stat_of(os.path.join(base, p)) for p in req.get("dirs", [])}
    out["files"] = {p: file_fact(os.path.join(base, p)) for p in req.get("files", [])}
    out["secrets"] = {}
    for name in req.get("secrets", []):
        value = read(os.path.join(base, "secrets", name))
        if value:
            out["secrets"][name] = value.strip()
    out["marker_hashes"] = {}
    for m in req.get("markers", []):
        value = read(os.path.join(base, "state", "init", m + ".done"))
        if value is not None:
            out["marker_hashes"][m] = value.strip()
    out["markers"] = sorted(out["marker_hashes"])
    out["venvs"] = {
        v: read(os.path.join(base, "venvs", v, ".devkit-spec")) for v in req.get("venvs", [])
    }
    try:
        out["program_files"] = sorted(os.listdir(os.path.join(base, "supervisor", "programs")))
    except OSError:
        out["program_files"] = []
    applied = read(os.path.join(base, "state", "programs.json"))
    try:
        out["applied"] = json.loads(applied) if applied else {}
    except ValueError:
        out["applied"] = {}
    out["supervisor"] = supervisor(base)
    checks = req.get("health", {})
    try:
        services = json.loads(read(os.path.join(base, "state", "services.json")) or "{}")
    except ValueError:
        services = {}
    out["provisioned_ports"] = [[p["service"], p["port"]] for p in services.get("ports", [])]
    if checks == "provisioned":
        checks = services.get("health", {})
    out["health"] = health(checks)
    out["listening"] = listening()
    out["docker"] = docker_engine()
    out["sudo"] = None
    if uid != 0 and not all(out["packages"].values()):
        p = subprocess.run(
            ["sudo", "-n", "true"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            universal_newlines=True,
        )
        out["sudo"] = p.returncode == 0
    sys.stdout.write(json.dumps(out))


main()
