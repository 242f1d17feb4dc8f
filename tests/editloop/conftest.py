"""The edit loop on real hosts: three sandbox hosts (network namespaces with their own sshd, root
only) provisioned with the editloop-test stack (tests/editloop/stack): supervisord, two services
run from a git checkout with PYTHONPATH=src, the watcher on el2.

The checkout is cloned on the host from a bare repository of the test project (testrepo.py) by an
init step of the test stack, the simplest honest way to get it there until a stack kind does it.
Everything lives under one temp dir (DEVKIT_STATE_DIR, DEVKIT_SSH_CONFIG, DEVKIT_KNOWN_HOSTS point
there); the finalizer takes every sandbox down by its pid and removes the dir.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.editloop import testrepo
from tests.ssh.conftest import Bed, devkit, drop_lock_dirs, isolated_env, lock_dirs

STACK = Path(__file__).resolve().parent / "stack"
HOSTS = ("el1", "el2", "el3")


class Env(NamedTuple):
    bed: Bed
    bare: Path  # the project's remote
    ports: dict[str, dict[str, int]]  # host -> service -> port


def checkout(env: Env, host: str) -> Path:
    return env.bed.dir / "checkouts" / host


def base(env: Env, host: str) -> Path:
    return Path(env.bed.base.replace("{host}", host))


def netns(env: Env, host: str) -> str:
    data = json.loads((env.bed.dir / "state" / "sandbox" / host / "sandbox.json").read_text())
    return str(data["netns"])


def answer(env: Env, host: str, service: str) -> dict | None:
    """The service's answer, from inside the host's network namespace (None: no answer)."""
    url = f"http://127.0.0.1:{env.ports[host][service]}/"
    r = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns(env, host)}", "curl", "-sf", "-m", "5", url],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(r.stdout) if r.returncode == 0 else None


def wait_for(env: Env, host: str, service: str, key: str, value: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = answer(env, host, service)
        if got and got[key] == value:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{host} {service}: {key} never became {value!r}; last answer {got}")


def pids(env: Env, host: str) -> dict[str, int]:
    r = devkit(env.bed, "status", host, "--base-dir", env.bed.base, "--format", "json")
    return {s["service"]: s["pid"] for s in json.loads(r.stdout)["services"]}


def edit(env: Env, host: str, rel: str, old: str, new: str) -> None:
    p = checkout(env, host) / rel
    text = p.read_text()
    assert old in text, (rel, old)
    p.write_text(text.replace(old, new))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: sandbox hosts are network namespaces with their own sshd")
    for tool in ("/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/sbin/ip", "/usr/bin/nsenter"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed")
    for tool in ("git", "curl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def env() -> Iterator[Env]:
    _need()
    d = Path(tempfile.mkdtemp(prefix="dkel-", dir="/tmp"))
    d.chmod(0o755)
    bare = testrepo.build(d)
    # the ports are this machine's too once forwarded (ssh-config's tunnel): free ones here
    ports = {h: {"alpha": free_port(), "beta": free_port()} for h in HOSTS}
    lines = [f'[tool.devkit.provision]\nstack = "{STACK}"\n']
    for h in HOSTS:
        lines.append(
            f"[tool.devkit.hosts.{h}.vars]\n"
            f'source.remote = "{bare}"\nsource.checkout = "{d / "checkouts" / h}"\n'
            f"source.watch = {'true' if h == 'el2' else 'false'}\n"
            f"alpha.port = {ports[h]['alpha']}\nbeta.port = {ports[h]['beta']}\n"
        )
    (d / "pyproject.toml").write_text("\n".join(lines))
    bed = Bed(d, isolated_env(d), str(d / "base" / "{host}"))
    locks = lock_dirs()
    e = Env(bed, bare, ports)
    try:
        for h in HOSTS:
            r = devkit(bed, "sandbox", "up", h, "--isolation", "netns", timeout=60)
            assert r.returncode == 0, r.stderr
        r = devkit(bed, "provision", *HOSTS, "--base-dir", bed.base, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        yield e
    finally:
        for box in sorted((d / "state" / "sandbox").glob("*/sandbox.json")):
            devkit(bed, "sandbox", "down", box.parent.name, timeout=60)
        drop_lock_dirs(locks)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def clean(env: Env) -> Iterator[None]:
    """Each test starts from el1's checkout as cloned, every service serving it."""
    yield
    co = checkout(env, "el1")
    testrepo.git(co, "checkout", "-q", "--", ".")
    testrepo.git(co, "clean", "-fdq", "src")
    devkit(env.bed, "restart", "--changed", "el1", "--base-dir", env.bed.base)
