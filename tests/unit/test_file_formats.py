"""Issue 22, items 6 and 13: every value devkit writes into a file on a host is written for that
file's format. Each backend.ai and halfstack file is rendered with hostile values and a hostile base
dir, then read back by its format's own parser (bash, tomllib, json, PyYAML, configparser as alembic
reads it, supervisord's own options, PostgreSQL, Redis, systemd-analyze): the value round-trips
exactly, or the plan is refused before anything runs, with one line naming the variable and file."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supervisor.options import ClientOptions, ServerOptions

from devkit.errors import DevkitError
from devkit.provision.engine import desired, hosts
from devkit.provision.kinds.base import Desired
from devkit.provision.kinds.registry import load_stack
from devkit.provision.stack import render
from devkit.provision.stack import spec as stk
from tests.fakehost import fresh_raw, parsed

# each one breaks some format: a command, quotes, supervisord's comments and %-expansion, a
# backslash, text that is not ASCII, line breaks of YAML 1.1, leading and trailing blanks
HOSTILE = [
    "$(touch {canary})",
    "`touch {canary}`",
    "q'u\"o'te\"; touch {canary}",
    "x ;y x #y",
    "100% %(here)s %% %s",
    "back\\slash\\",
    "é ü 日本 😀",
    " spaced  ",
    "-n ${{HOME}} ~ * ?",
    "a\x85b\u2028c",
]
# no file with a shell word or a supervisord value can hold these: refused while planning
REFUSED = ["a\nb; touch {canary}", "tab\there", "bell\x07", "not UTF-8 \udcff"]
# a base dir with each of supervisord's comment forms (and no %), and one with its %-expansion
BASES = ["b a'se\"/x ;y #z é\\q $(touch {canary}) ", "b a'se\"/100% %s %% x#y é\\q"]
TRIXIE = {"id": "debian", "version": "13", "codename": "trixie"}
KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # the stack's default admin.secret_key
PG = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))


def build(
    base: str, overrides: dict[str, Any], stack: str = "backend.ai", secret: str = "", **host: Any
) -> Desired:
    """The plan for a fresh host (a plain user's, Debian 13), its generated secrets `secret`."""
    facts = {"user": "dev", "uid": 1000, "pythons": ["3.13"], "os": TRIXIE, **host}
    t = hosts.Target("vm", "vm", stack, base, {})
    made = {"new_secret": lambda n: secret} if secret else {}
    return desired.build(
        load_stack(stack), t, overrides, parsed(fresh_raw(base=base, **facts)), **made
    )


def written(d: Desired) -> dict[str, Path]:
    """Every file of the plan, written under its base dir as the host would have it."""
    out = {}
    for f in d.of("files"):
        path = Path(d.layout.path(f.dest))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content, encoding="utf-8")
        out[f.id] = path
    for folder in ("logs", "run", "data/redis"):
        Path(d.layout.path(folder)).mkdir(parents=True, exist_ok=True)
    return out


def sourced(path: Path, *names: str) -> tuple[list[str], str]:
    """bash -n, then the file sourced with `set -u`: the named variables and what it printed."""
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    script = 'set -u; . "$1"; shift; for n; do printf "%s\\0" "${!n}" >&2; done'
    p = subprocess.run(
        ["bash", "-c", script, "-", str(path), *names],
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(path.parent)},
        cwd=path.parent,
        check=True,
    )
    return p.stderr.decode().split("\0")[:-1], p.stdout.decode()


def supervisord(conf: Path) -> tuple[Any, str]:
    """The options supervisord and supervisorctl read from the config, as they read them."""
    server, client = ServerOptions(), ClientOptions()
    server.realize(args=["-c", str(conf)])
    client.realize(args=["-c", str(conf)])
    return server, client.serverurl


def program(server: Any, name: str) -> tuple[list[str], dict[str, str], str, str]:
    """A program's arguments (with what `env` sets before them), environment, folder and log."""
    (p,) = [p for g in server.process_group_configs for p in g.process_configs if p.name == name]
    argv, env = shlex.split(p.command), dict(p.environment or {})
    if argv[0] == "/usr/bin/env":
        while "=" in argv[1]:
            k, _, v = argv.pop(1).partition("=")
            env[k] = v
        argv.pop(0)
    folder = p.directory or server.directory  # none of its own: supervisord's
    return argv, env, os.path.normpath(folder), os.path.normpath(p.stdout_logfile)


def postgres_reads(conf: str, name: str) -> str:
    """What PostgreSQL reads a setting as (`postgres -C`), as the postgres user when root."""
    d = Path(tempfile.mkdtemp(prefix="dkpg-", dir="/tmp"))
    try:
        d.chmod(0o755)
        (d / "c.conf").write_text(conf)
        argv = [str(PG[-1]), "-C", name, "-D", str(d), "-c", f"config_file={d}/c.conf"]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return p.stdout.rstrip("\n")
    finally:
        shutil.rmtree(d)


def redis_reads(conf: Path, name: str) -> str:
    """What redis-server reads a setting as: started on a socket only, asked, stopped by pid."""
    d = Path(tempfile.mkdtemp(prefix="dkrd-", dir="/tmp"))
    sock = d / "s"
    server = subprocess.Popen(
        ["redis-server", str(conf), "--port", "0", "--unixsocket", str(sock), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if sock.exists():
                break
            assert server.poll() is None, "redis-server did not start with the config"
            time.sleep(0.02)
        ask = ["redis-cli", "-s", str(sock), "--raw", "config", "get", name]
        return subprocess.run(ask, capture_output=True, text=True, check=True).stdout.split("\n")[1]
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(d)


def check_backendai(d: Desired, email: str, secret: str, canary: Path, key: str = "") -> None:
    """Every file of the backend.ai stack read back by its own parser holds what was given."""
    base, f = d.layout.base, written(d)
    # shell files: sourced, nothing runs, each value as given
    (endpoint, path), said = sourced(f["env-local-admin-session.sh"], "BACKEND_ENDPOINT", "PATH")
    assert said == f"Log in with: backend.ai login (user: {email})\n"
    assert endpoint == "http://127.0.0.1:8090/" and path.startswith(f"{base}/venvs/backend.ai/bin:")
    key = key or secret
    (got,), said = sourced(f["env-local-admin-api.sh"], "BACKEND_SECRET_KEY")
    assert got == key and said == ""
    python = Path(base) / "venvs/backend.ai/bin/python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text('#!/bin/sh\nprintf "%s|" "$0" "$@"\n')
    python.chmod(0o755)
    assert subprocess.run(["sh", "-n", str(f["python"])]).returncode == 0
    ran = subprocess.run(["sh", str(f["python"]), "a b"], capture_output=True, text=True)
    assert ran.stdout == f"{python}|a b|", ran.stderr
    assert not canary.exists()
    # JSON
    assert json.loads(f["admin-login.json"].read_text()) == {"username": email, "password": secret}
    fixture = json.loads(f["fixture.json"].read_text())
    assert fixture["users"][0]["email"] == email and fixture["users"][0]["password"] == secret
    assert fixture["keypairs"][0]["secret_key"] == key
    assert json.loads(f["etcd-volumes.json"].read_text())["_mount"] == f"{base}/data/vfroot"
    for name in ("etcd-config.json", "docker-daemon.json", "services.json", "probes.json"):
        json.loads(f[name].read_text())
    # TOML (webserver.conf is TOML)
    for name, table in (
        ("agent.toml", "agent"),
        ("manager.toml", "manager"),
        ("storage-proxy.toml", "storage-proxy"),
        ("webserver.conf", "webserver"),
    ):
        toml = tomllib.loads(f[name].read_text())
        assert toml[table]["ipc-base-path"] == f"{base}/run/ipc", name
    generated = d.secrets["postgres_password"]
    assert tomllib.loads(f["manager.toml"].read_text())["db"]["password"] == generated
    storage = tomllib.loads(f["storage-proxy.toml"].read_text())
    assert storage["storage-proxy"]["secret"] == d.secrets["storage_secret"]
    # INI, as alembic reads it (its ConfigParser interpolates %)
    ini = configparser.ConfigParser()
    ini.read(f["alembic.ini"], encoding="utf-8")
    url = f"postgresql://bai:{quote(generated, safe='/')}@127.0.0.1:8101/backend"
    assert ini.get("alembic", "sqlalchemy.url") == url
    compile(f["check.py"].read_text(), "check.py", "exec")
    # supervisord: each program's arguments, environment, folder and log
    server, url = supervisord(f["supervisord.conf"])
    assert url == f"unix://{base}/run/supervisor.sock"
    argv, env, folder, log = program(server, "manager")
    assert argv == [f"{base}/bin/python", "-m", "ai.backend.manager.server", "-f", f"{base}/etc/manager.toml"]  # fmt: skip
    assert env == {"DOCKER_HOST": f"unix://{base}/run/docker.sock"}
    assert (folder, log) == (base, f"{base}/logs/manager.log")
    check_halfstack(d, f, server)


def check_halfstack(d: Desired, f: dict[str, Path], server: Any) -> None:
    base = d.layout.base
    assert os.path.normpath(server.directory) == base
    assert server.pidfile == f"{base}/run/supervisord.pid"
    assert server.logfile == f"{base}/logs/supervisord.log"
    assert server.server_configs[0]["file"] == f"{base}/run/supervisor.sock"
    argv, _, folder, log = program(server, "redis")
    assert argv == ["/usr/bin/redis-server", f"{base}/etc/redis.conf"]
    assert (folder, log) == (base, f"{base}/logs/redis.log")
    assert program(server, "etcd")[0] == ["/usr/bin/etcd", "--config-file", f"{base}/etc/etcd.yml"]
    etcd = yaml.safe_load(f["etcd.yml"].read_text())
    assert etcd["data-dir"] == f"{base}/data/etcd" and etcd["name"] == "devkit-vm"
    subprocess.run(["sh", "-n", str(f["start-all"])], check=True)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_stack_variable_round_trips_through_every_file(
    value: str, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    v = value.format(canary=canary)
    base = str(tmp_path / "dk")
    # the generated secrets too: they are hex, but a file must not rely on it
    d = build(base, {"admin": {"email": v, "password": v, "secret_key": v}}, secret=v)
    check_backendai(d, v, v, canary)


@pytest.mark.parametrize("line", ["23.9.10", "26.9.6"])
@pytest.mark.parametrize("name", BASES)
def test_a_hostile_base_dir_round_trips_through_every_file(
    name: str, line: str, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    base = str(tmp_path / name.format(canary=canary))
    d = build(base, {"backend_ai": {"version": line}}, pythons=["3.11", "3.13"])
    check_backendai(d, "admin@lablup.com", "wJalrXUt", canary, KEY)


@pytest.mark.parametrize("name", BASES)
def test_the_halfstack_reads_a_hostile_base_dir_and_bindir(name: str, tmp_path: Path) -> None:
    base = str(tmp_path / name.format(canary=tmp_path / "canary"))
    bindir = f"{base}/pg ;bin #x %%"
    d = build(base, {"postgres": {"bindir": bindir}}, stack="halfstack")
    f = written(d)
    server, _ = supervisord(f["supervisord.conf"])
    check_halfstack(d, f, server)
    argv, _, _, _ = program(server, "postgres")
    conf = f"config_file={base}/etc/postgresql.conf"
    assert argv == [f"{bindir}/postgres", "-D", f"{base}/data/postgres", "-c", conf]
    if shutil.which("redis-server") and shutil.which("redis-cli"):
        assert redis_reads(f["redis.conf"], "dir") == os.path.realpath(f"{base}/data/redis")
    if PG and (os.geteuid() != 0 or shutil.which("runuser")):
        # a list of folders, each in double quotes ("" for a "), as PostgreSQL splits it
        quoted = '"' + f"{base}/run/postgres".replace('"', '""') + '"'
        assert postgres_reads(f["postgresql.conf"].read_text(), "unix_socket_directories") == quoted


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
@pytest.mark.parametrize("name", [*BASES, "b\\"])
def test_the_boot_unit_loads_in_systemd(name: str, tmp_path: Path) -> None:
    base = str(tmp_path / name.format(canary=tmp_path / "canary"))
    d = build(base, {}, stack="halfstack", user="root", uid=0, init="systemd")
    unit = tmp_path / d.of("boot").name
    unit.write_text(d.of("boot").content)
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True)
    assert p.returncode == 0, p.stderr.decode()


@pytest.mark.parametrize("value", REFUSED)
def test_a_value_no_shell_file_can_hold_is_refused_with_one_line(value: str) -> None:
    with pytest.raises(DevkitError) as info:
        build("/srv/dk", {"admin": {"email": value.format(canary="/tmp/never")}})
    message = info.value.message
    assert "\n" not in message and "\n" not in info.value.hint
    assert "template env-local-admin-session.sh.j2" in message, message
    assert "variable `admin.email` has " in message and "a shell file cannot hold" in message
    assert "--set admin.email=" in info.value.hint


@pytest.mark.parametrize(
    ("base", "reason"),
    [
        ("/srv/100% ;x", "a %, so it cannot be written from %(here)s either"),
        ("/srv/a%(here)s", "has `%(here)s`"),
        ("/srv/new\nline", "has a newline"),
    ],
)
def test_a_base_dir_supervisord_cannot_read_is_refused_with_one_line(
    base: str, reason: str
) -> None:
    with pytest.raises(DevkitError) as info:
        build(base, {}, stack="halfstack")
    assert "\n" not in info.value.message and "the base dir " in info.value.message
    assert reason in info.value.message and "--base-dir" in info.value.hint


def test_a_template_of_no_known_format_is_refused_when_the_stack_loads(tmp_path: Path) -> None:
    (tmp_path / "a.conf.j2").write_text("x {{ x }}\n")
    (tmp_path / "stack.toml").write_text(
        '[vars]\nx = "y"\n[services.s]\nfiles = [{ template = "a.conf.j2", dest = "etc/a" }]\n'
        '[services.s.program]\ncommand = "sleep 1"\n'
    )
    with pytest.raises(DevkitError, match=r"files\[0\]\.format: cannot tell the format") as info:
        load_stack(str(tmp_path))
    assert 'format = one of "shell"' in info.value.hint.replace("'", '"')


# a bare `{{ x }}` in a file of each format, as a stack's author would write it
BARE = {
    "sh": "# {{ x }}\nx={{ x }}\n",
    "toml": "# {{ x }}\nx = {{ x }}\n",
    "json": '{"x": {{ x }}}\n',
    "yml": "# {{ x }}\nx: {{ x }}\n",
    "ini": "# {{ x }}\n[s]\nx = {{ x }}\n",
    "py": "# {{ x }}\nx = {{ x }}\n",
}


def read_bare(suffix: str, path: Path) -> str:
    text = path.read_text()
    if suffix == "sh":
        return sourced(path, "x")[0][0]
    if suffix == "toml":
        return str(tomllib.loads(text)["x"])
    if suffix == "json":
        return str(json.loads(text)["x"])
    if suffix == "yml":
        return str(yaml.safe_load(text)["x"])
    if suffix == "py":
        scope: dict[str, Any] = {}
        exec(compile(text, str(path), "exec"), scope)  # a literal: nothing else to run
        return str(scope["x"])
    ini = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    ini.read(path, encoding="utf-8")
    return ini.get("s", "x")


def bare_stack(tmp: Path) -> stk.Stack:
    files = []
    for suffix, template in BARE.items():
        (tmp / f"t.{suffix}.j2").write_text(template)
        files.append(f'{{ template = "t.{suffix}.j2", dest = "etc/t.{suffix}" }}')
    (tmp / "stack.toml").write_text(
        f'[vars]\nx = "y"\n[services.s]\nfiles = [{", ".join(files)}]\n'
        '[services.s.program]\ncommand = "sleep 1"\n'
    )
    return load_stack(str(tmp))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(
        st.sampled_from(list(" ;#%()$`'\"\\\n\t~*!{}=,:-éü日😀\x85\u2028\x7f")) | st.characters(),
        max_size=16,
    )
)
def test_any_value_of_a_variable_reaching_a_file_round_trips_or_is_one_line(
    value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A stack author's bare `{{ x }}` in a file of each format, and admin.email through every
    backend.ai file: read back exactly by each format's parser, or refused with one line."""
    tmp = tmp_path_factory.mktemp("v")
    stack = bare_stack(tmp)
    t = hosts.Target("vm", "vm", stack.name, str(tmp / "dk"), {})
    facts = parsed(fresh_raw(base=str(tmp / "dk"), user="dev", uid=1000))
    try:
        d = desired.build(stack, t, {"x": value}, facts)
    except DevkitError as exc:
        assert "\n" not in exc.message and "variable `x`" in exc.message, exc.message
    else:
        files = written(d)
        for suffix in BARE:
            assert read_bare(suffix, files[f"t.{suffix}"]) == value, suffix
    canary = tmp / "canary"
    try:
        d = build(str(tmp / "bai"), {"admin": {"email": value}})
    except DevkitError as exc:
        assert "\n" not in exc.message and "variable `admin.email`" in exc.message
    else:
        check_backendai(d, value, "wJalrXUt", canary, KEY)


@settings(max_examples=40, deadline=None)
@given(value=st.text(max_size=24))
def test_every_format_writes_a_literal_its_parser_reads_back_or_refuses(value: str) -> None:
    for fmt, read in (
        ("toml", lambda t: tomllib.loads(f"v = {t}")["v"]),
        ("json", json.loads),
        ("yaml", lambda t: yaml.safe_load(f"v: {t}")["v"]),
        ("python", lambda t: eval(t, {"__builtins__": {}})),  # a literal: nothing else to run
    ):
        try:
            literal = render.escape(fmt, value)
        except render.UnsafeValue as exc:
            assert "\n" not in exc.reason
            continue
        assert read(literal) == value, fmt


def test_every_format_has_its_escape() -> None:
    assert set(render.ESCAPES) == set(stk.FORMATS)


def test_tools_exist() -> None:
    assert shutil.which("bash") and shutil.which("sh")
