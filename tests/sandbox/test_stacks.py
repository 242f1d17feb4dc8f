"""The stacks on isolated hosts of both releases, in one parallel run: what each OS has (PostgreSQL 15
or 17, its packages, its Python) is found on the host, not assumed; a re-run changes nothing. The
Backend.AI stack runs each release line on the Debian that has its Python: 23.9.10 (Python 3.11) on
bookworm, the current line (26.x, Python 3.13) on trixie, both in one `devkit provision`, and runs
compute sessions on each inside the sandbox (its dockerd on overlay2, its bridge in the sandbox's
network namespace, container rlimits within what the sandbox grants)."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from tests import docs_examples
from tests.e2e.checks import ROOT, exposed, login_script, phases
from tests.sandbox.conftest import RELEASES
from tests.ssh.conftest import Bed, devkit, failed, ssh

pytestmark = [pytest.mark.root, pytest.mark.ssh]
POSTGRES = {"bookworm": "15", "trixie": "17"}
# the release each sandbox runs: 23.9.10, the stack's default, on bookworm; the current line's
# newest release on PyPI (when this was written) on trixie
VERSIONS = {"bw": "23.9.10", "tx": "26.9.6"}
PYTHONS = {"bw": "3.11", "tx": "3.13"}
SERVICES = {"postgres", "redis", "etcd", "docker", "storage-proxy", "manager", "agent", "webserver"}
# each line's kernel image, built on the Debian of its Python, and the name the manager records it by
KERNELS = {
    "bw": ("lablup/python:3.11-debian12", "index.docker.io"),
    "tx": ("lablup/python:3.13-debian13", "local"),
}
KERNEL_LABEL = "label=ai.backend.kernel-id"


def summary(text: str) -> dict[str, str]:
    """Each host's outcome, from a provision's summary lines (`  HOST  changed (57 ops)  133.0s`)."""
    return dict(re.findall(r"^  (\S+)  +(changed|unchanged|FAILED|INTERRUPTED)\b", text, re.M))


def changed_ops(text: str) -> dict[str, set[tuple[str, str]]]:
    """Each host's changed ops, from a provision's progress lines (`HOST: ID ACTION: changed`)."""
    ops: dict[str, set[tuple[str, str]]] = {}
    for host, op, action in re.findall(r"^(\S+): (\S+) (\S+): changed$", text, re.M):
        ops.setdefault(host, set()).add((op, action))
    return ops


def engine_can_raise_rlimits() -> bool:
    """Can a process here raise its hard nofile limit (CAP_SYS_RESOURCE)? A sandbox gets no more."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard >= int(Path("/proc/sys/fs/nr_open").read_text()):
        return True
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard + 1))
    except (ValueError, OSError):
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # back (lowering needs no privilege)
    return True


def test_the_halfstack_on_bookworm_and_trixie_in_parallel(bed: Bed) -> None:
    hosts = sorted(RELEASES)
    r = devkit(bed, "provision", *hosts, "--stack", "halfstack", "--format", "json", timeout=1200)
    assert r.returncode == 0, failed(r.stdout) + r.stderr
    assert {h["host"]: h["status"] for h in json.loads(r.stdout)["hosts"]} == dict.fromkeys(
        hosts, "changed"
    )
    for name in hosts:
        st = json.loads(devkit(bed, "status", name, "--format", "json").stdout)
        assert st["ok"] and st["stack"] == "halfstack", st
        # the distribution's own PostgreSQL of that release, installed inside the sandbox
        version = POSTGRES[RELEASES[name]]
        out = ssh(bed.env, name, f"/usr/lib/postgresql/{version}/bin/postgres --version").stdout
        assert f"(PostgreSQL) {version}." in out, out
    again = devkit(bed, "provision", *hosts, "--stack", "halfstack", "--format", "json")
    assert [h["status"] for h in json.loads(again.stdout)["hosts"]] == ["unchanged"] * 2
    for name in hosts:
        r = devkit(bed, "teardown", name, "--purge", "--stack", "halfstack")
        assert r.returncode == 0, r.stdout + r.stderr


def test_backendai_23_09_on_bookworm_and_the_current_line_on_trixie_in_one_run(bed: Bed) -> None:
    # each host's line is its own setting (one `devkit provision` for both): a config of this test's
    cfg = bed.dir / "backend.ai" / "pyproject.toml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(
        '[tool.devkit.provision]\nstack = "backend.ai"\n\n'
        f'[tool.devkit.hosts.tx.vars]\nbackend_ai.version = "{VERSIONS["tx"]}"\n'
    )
    conf = ("--config", str(cfg))
    # bookworm's wheels (its Python is this machine's) are fetched here and kept between runs;
    # trixie's Python 3.13 installs with its own pip, through the sandbox's proxy
    cache = Path.home() / ".cache" / "devkit-tests" / "wheel-cache"
    env = {"DEVKIT_WHEEL_CACHE": str(cache)}
    hosts = sorted(VERSIONS)

    def status(name: str) -> dict[str, Any]:
        return json.loads(devkit(bed, "status", name, *conf, "--format", "json").stdout)

    out = ROOT / ".cache" / "lines-timings.txt"
    with phases("backend.ai 23.9.10 on bookworm, 26.x on trixie: phase timings", out) as phase:
        with phase("provision both in parallel (one run)"):
            # as people read it: the tutorial's main job shows this run's trixie host (the docs'
            # example main-job, docs/tutorial/dev-stack.md)
            first = devkit(bed, "provision", *hosts, *conf, timeout=1800, env=env)
            assert first.returncode == 0, first.stdout + first.stderr
            assert summary(first.stdout) == dict.fromkeys(hosts, "changed"), first.stdout
            ops = changed_ops(first.stdout)
            for name in hosts:
                assert {("image:python", "build"), ("image:python", "register")} <= ops[name]
            # the 23.09 agent needs devkit's hook where rlimits cannot be raised; 26.x caps its own
            capped = not engine_can_raise_rlimits()
            assert (("rlimit-hook", "install") in ops["bw"]) is capped, ops["bw"]
            assert ("rlimit-hook", "install") not in ops["tx"], ops["tx"]

        with phase("status: every service healthy on both"):
            base = {}
            for name in hosts:
                st = status(name)
                assert st["ok"] and st["stack"] == "backend.ai", st
                assert {s["service"] for s in st["services"]} == SERVICES
                assert all(s["state"] == "RUNNING" and s["healthy"] for s in st["services"]), st
                base[name] = st["base"]

        with phase("each host runs its line on its Python"):
            for name in hosts:
                py = f"{base[name]}/venvs/backend.ai/bin/python"
                r = ssh(
                    bed.env,
                    name,
                    f"{py} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' && "
                    "python3 -c 'import urllib.request as u; "
                    'print(u.urlopen("http://127.0.0.1:8091/").read().decode())\'',
                )
                assert r.returncode == 0, r.stdout + r.stderr
                version, hello = r.stdout.split("\n", 1)
                assert version == PYTHONS[name]
                # the manager says "23.09.10" for the 23.9.10 wheels
                said = json.loads(hello)["manager"]
                assert re.sub(r"\.0(\d)", r".\1", said) == VERSIONS[name], hello

        with phase("nothing but sshd listens beyond loopback"):
            for name in hosts:
                r = ssh(bed.env, name, "ss -Hltnp")
                assert r.returncode == 0, r.stderr
                assert exposed(r.stdout) == [], r.stdout

        with phase("webserver login, GraphQL and signed API calls"):
            for name in hosts:
                r = ssh(bed.env, name, login_script(base[name], graphql=True))
                assert r.stdout.split() == ["authenticated", "session", "gql"], r.stdout + r.stderr
                env_file = f"{base[name]}/client/env-local-admin-api.sh"
                r = ssh(
                    bed.env,
                    name,
                    f"test $(stat -c %a {env_file}) = 600 && . {env_file} && "
                    "backend.ai admin storage list && backend.ai admin agent list",
                )
                assert r.returncode == 0, r.stdout + r.stderr
                assert "local:volume1" in r.stdout and "vfs" in r.stdout
                assert "i-devkit-agent" in r.stdout and "ALIVE" in r.stdout

        with phase("the current line's TLS: its own certificate"):
            tls = f"{base['tx']}/secrets/tls"
            r = ssh(
                bed.env,
                "tx",
                f"stat -c '%a %n' {tls} {tls}/*.pem && "
                f"openssl x509 -noout -subject -ext subjectAltName -in {tls}/storage-manager-api.cert.pem",
            )
            assert r.returncode == 0, r.stdout + r.stderr
            modes = [line.split()[0] for line in r.stdout.splitlines()[:3]]
            assert modes == ["700", "600", "600"], r.stdout
            # made for this host (the health check verified the served one against it), not the
            # pair Backend.AI's repository shares (CN = storage-proxy.local)
            assert "subject=CN=127.0.0.1" in r.stdout.replace(" = ", "=")
            assert "IP Address:127.0.0.1" in r.stdout

        def on(name: str, script: str, timeout: float = 300) -> Any:
            """A command on the host with the admin keypair, the CLI and the stack's engine."""
            env_file = shlex.quote(f"{base[name]}/client/env-local-admin-api.sh")
            sock = shlex.quote(f"unix://{base[name]}/run/docker.sock")
            return ssh(
                bed.env,
                name,
                f". {env_file} && export DOCKER_HOST={sock} && cd /tmp && {script}",
                timeout=timeout,
            )

        def kernels(name: str, running_only: bool = False) -> list[str]:
            r = on(name, f"docker ps -q{'' if running_only else 'a'} --filter {KERNEL_LABEL}")
            assert r.returncode == 0, r.stdout + r.stderr
            return r.stdout.split()

        def no_kernel_left(name: str) -> None:
            # the agent removes a destroyed session's container in the background
            deadline = time.monotonic() + 90
            while kernels(name) and time.monotonic() < deadline:
                time.sleep(1)
            assert kernels(name) == [], f"a kernel container is left on {name}"

        def sql(name: str, query: str) -> str:
            psql = f"/usr/lib/postgresql/{POSTGRES[RELEASES[name]]}/bin/psql"
            secret = shlex.quote(f"{base[name]}/secrets/postgres_password")
            r = on(
                name,
                f"PGPASSWORD=$(cat {secret}) {psql} -X -tA -h 127.0.0.1 -p 8101 -U bai -d backend "
                f"-c {shlex.quote(query)}",
            )
            assert r.returncode == 0, r.stdout + r.stderr
            return r.stdout.strip()

        with phase("dockerd in each sandbox: overlay2, cgroups, its own bridge"):
            image = {}
            for name in hosts:
                tag, registry = KERNELS[name]
                r = on(
                    name,
                    "docker info --format '{{.Driver}} {{.CgroupDriver}}' && "
                    "ip -br link show docker0 | cut -d' ' -f1 && "
                    f"docker image inspect --format '{{{{.Id}}}}' {tag}",
                )
                assert r.returncode == 0, r.stdout + r.stderr
                driver, bridge, image[name] = r.stdout.strip().splitlines()
                # the base dir is a plain directory in the sandbox (overlay2 fails on overlayfs)
                assert (driver, bridge) == ("overlay2 cgroupfs", "docker0"), r.stdout
                # the manager knows the image built here by its alias, with the engine's id
                row = sql(
                    name,
                    "select i.name, trim(i.config_digest) from image_aliases a "
                    "join images i on i.id = a.image where a.alias = 'python'",
                )
                assert row == f"{registry}/{tag}|{image[name]}", row

        with phase("run --rm print(6*7) on each line"):
            said = {}
            for name in hosts:
                # as a terminal shows it: the CLI's progress (standard error) around the answer
                r = on(name, "PYTHONUNBUFFERED=1 backend.ai run --rm -c 'print(6*7)' python 2>&1")
                assert r.returncode == 0, r.stdout + r.stderr
                assert "42" in r.stdout.splitlines(), r.stdout + r.stderr
                said[name] = r.stdout
                no_kernel_left(name)

        with phase("the current line: session create -> RUNNING"):
            r = on("tx", "backend.ai session create --name dk-running python")
            assert r.returncode == 0 and "is created and ready" in r.stdout + r.stderr, (
                r.stdout + r.stderr
            )
            assert sql("tx", "select status from sessions where name = 'dk-running'") == "RUNNING"
            [kernel] = kernels("tx", running_only=True)
            # the 26.x agent asks for no more than it has itself (no hook in its venv)
            r = on(
                "tx",
                f"docker inspect --format '{{{{json .HostConfig.Ulimits}}}}' {kernel} && "
                f"docker exec {kernel} sh -c 'ulimit -Hn' && "
                f"ls {shlex.quote(base['tx'])}/venvs/backend.ai/lib/python3.13/site-packages",
            )
            assert r.returncode == 0, r.stdout + r.stderr
            limits, hard, site = r.stdout.split("\n", 2)
            nofile = {u["Name"]: u for u in json.loads(limits)}["nofile"]
            assert int(hard) == nofile["Hard"] <= 1048576, limits
            assert "_devkit_container_rlimits" not in site

        with phase("the current line: session destroy, no container left"):
            r = on("tx", "backend.ai session destroy dk-running")
            assert r.returncode == 0, r.stdout + r.stderr
            no_kernel_left("tx")
            status = sql("tx", "select status from sessions where name = 'dk-running'")
            assert status in ("TERMINATING", "TERMINATED"), status

        with phase("second provision changes nothing"):
            again = devkit(bed, "provision", *hosts, *conf, env=env)
            assert again.returncode == 0, again.stdout + again.stderr
            assert summary(again.stdout) == dict.fromkeys(hosts, "unchanged"), again.stdout
            outputs = [first.stdout, said["tx"], again.stdout]
            docs_examples.compare("main-job", outputs, {"tx": "sandbox"})
            for name in hosts:  # the same image, not built again
                tag = KERNELS[name][0]
                r = on(name, f"docker image inspect --format '{{{{.Id}}}}' {tag}")
                assert r.stdout.strip() == image[name], r.stdout + r.stderr

        with phase("the current line on Python 3.11 stops before anything changes"):
            r = devkit(
                bed, "provision", "bw", *conf, "--set", f"backend_ai.version={VERSIONS['tx']}"
            )
            assert r.returncode == 1, r.stdout + r.stderr
            assert "/usr/bin/python3 is Python 3.11." in r.stdout, r.stdout
            assert "it needs Python 3.13" in r.stdout and "--release trixie" in r.stdout, r.stdout
            assert "Traceback" not in r.stdout + r.stderr
            docs_examples.compare("lines-refused", [r.stdout])  # docs/backend.ai/release-lines.md
            again = devkit(bed, "provision", "bw", *conf, "--format", "json", env=env)
            assert json.loads(again.stdout)["hosts"][0]["status"] == "unchanged", again.stdout
    # the session's finalizer brings both sandboxes down, the stacks in them with them
    # (`teardown --purge` of this stack is tested in tests/e2e)
