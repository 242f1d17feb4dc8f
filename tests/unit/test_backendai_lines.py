"""The backend.ai stack's two release lines, as rendered (no host): the version decides the line,
the line decides the interpreter and each difference in the configs. tests/sandbox/test_stacks.py
runs both lines for real (23.9.10 on bookworm, 26.x on trixie)."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest

from devkit.errors import DevkitError
from devkit.provision.engine import desired, hosts
from devkit.provision.kinds.base import Desired
from devkit.provision.kinds.registry import load_stack
from devkit.provision.stack import render, vartypes
from devkit.provision.stack import spec as stk
from tests.fakehost import FakeHost, fresh_raw, parsed
from tests.unit.test_engine import BASE, provision

CURRENT = "26.9.6"
TRIXIE = {"id": "debian", "version": "13", "codename": "trixie", "name": "Debian GNU/Linux 13"}


def _bai(version: str = CURRENT, **host: Any) -> Desired:
    raw = fresh_raw(base=BASE, **host)
    t = hosts.Target("vm", "vm", "backend.ai", BASE, {})
    return desired.build(
        load_stack("backend.ai"), t, {"backend_ai": {"version": version}}, parsed(raw)
    )


def _files(d: Desired) -> dict[str, str]:
    return {f.id: f.content for f in d.of("files")}


def _venv(d: Desired) -> Any:
    return next(v for v in d.of("venvs") if v.name == "backend.ai")


@pytest.mark.parametrize(
    ("version", "python"),
    [("23.9.10", "3.11"), ("23.09.10", "3.11"), ("26.9.6", "3.13"), ("26.8.0rc1", "3.13")],
)
def test_the_version_decides_the_line_and_its_python(version: str, python: str) -> None:
    v = _venv(_bai(version))
    assert v.python_version == python
    assert f"backend.ai-manager=={version}" in v.requirements
    # the yarl pin is 23.09's alone; the current line resolves its own
    assert v.constraints == (("yarl==1.9.4",) if python == "3.11" else ())


@pytest.mark.parametrize(
    ("pythons", "version"),
    [
        (["3.13"], "26.9.6"),
        (["3.11"], "23.9.10"),
        (["3.11", "3.13"], "23.9.10"),
        (["3.12"], "23.9.10"),
    ],
)
def test_by_default_the_line_the_hosts_python_runs(pythons: list[str], version: str) -> None:
    raw = fresh_raw(base=BASE, pythons=pythons)
    t = hosts.Target("vm", "vm", "backend.ai", BASE, {})
    d = desired.build(load_stack("backend.ai"), t, {}, parsed(raw))
    assert f"backend.ai-manager=={version}" in _venv(d).requirements


@pytest.mark.parametrize("version", ["24.3.0", "25.6.0", "22.9.20", "23.3.7"])
def test_a_version_of_no_line_is_refused_with_the_lines_there_are(version: str) -> None:
    with pytest.raises(DevkitError) as info:
        _bai(version)
    assert f"Backend.AI {version} is in no release line devkit runs" in info.value.message
    assert "23.9.x (Python 3.11, Debian 12) or 26.x (Python 3.13, Debian 13)" in info.value.hint
    assert "--set backend_ai.version=26.9.6" in info.value.hint


def test_a_refused_version_changes_nothing_on_any_host() -> None:
    vm = FakeHost("vm", fresh_raw(base=BASE))
    with pytest.raises(DevkitError, match="is in no release line"):
        provision({"vm": vm}, "backend.ai", overrides={"backend_ai": {"version": "24.3.0"}})
    assert [op for op, _ in vm.log if op != "lock"] == []


def test_the_current_line_on_a_python_311_host_stops_before_anything_with_the_version_needed() -> (
    None
):
    # what the venv check prints on Debian 12 (its real shell runs in tests/sandbox/test_stacks.py)
    vm = FakeHost("vm", fresh_raw(base=BASE)).on(
        r"^python$", rc=3, stdout="backend.ai: /usr/bin/python3 is Python 3.11.2\n"
    )
    [r], _ = provision({"vm": vm}, "backend.ai", overrides={"backend_ai": {"version": CURRENT}})
    assert r.status == "failed" and r.error.op == "python"
    assert "is Python 3.11.2; it needs Python 3.13" in r.error.detail
    assert "Backend.AI 26.9.6 runs on Python 3.13 only" in r.error.hint
    assert "devkit sandbox up NAME --release trixie" in r.error.hint
    assert vm.ops() == ["lock", "python", "lock"]


def test_the_hint_points_at_the_hosts_own_python_of_that_version_else_at_a_release_with_it() -> (
    None
):
    assert (
        "--set backend_ai.python=/usr/bin/python3.13"
        in _venv(_bai(pythons=["3.11", "3.13"])).python_hint
    )
    assert "--release trixie" in _venv(_bai(pythons=["3.11"])).python_hint
    assert "--release bookworm" in _venv(_bai("23.9.10", pythons=["3.13"])).python_hint


def test_the_current_line_configs_have_its_keys_and_listen_on_loopback_only() -> None:
    d = _bai(os=TRIXIE, pythons=["3.13"])
    f = _files(d)
    toml = {n: tomllib.loads(f[n]) for n in ("manager.toml", "storage-proxy.toml", "agent.toml")}
    web = tomllib.loads(f["webserver.conf"])
    mgr, sp, ag = toml["manager.toml"], toml["storage-proxy.toml"], toml["agent.toml"]
    assert mgr["manager"]["internal-addr"] == {"host": "127.0.0.1", "port": 18080}
    api = sp["api"]["manager"]
    assert api["internal-addr"] == {"host": "127.0.0.1", "port": 16023}
    assert api["ssl-enabled"] is True
    assert api["ssl-cert"] == f"{BASE}/secrets/tls/storage-manager-api.cert.pem"
    assert api["ssl-privkey"] == f"{BASE}/secrets/tls/storage-manager-api.key.pem"
    volumes = json.loads(f["etcd-volumes.json"])
    assert volumes["proxies"]["local"]["manager_api"] == "https://127.0.0.1:6022"
    assert ag["agent"]["initial-resource-group-name"] == "default"
    assert ag["agent"]["service-addr"] == {"host": "127.0.0.1", "port": 6003}
    assert "scaling-group" not in ag["agent"] and "watcher" not in ag
    assert web["apollo-router"] == {"enabled": False}
    assert web["security"] == {"cookie_secure": False}
    # every address any service binds is loopback
    hosts_ = re.findall(
        r'host = "([^"]+)"|^ip = "([^"]+)"|bind-host = "([^"]+)"', "".join(f.values()), re.M
    )
    assert {h for m in hosts_ for h in m if h} == {"127.0.0.1"}
    ports = {(p.service, p.name): p.port for p in d.of("programs").ports}
    assert ports[("manager", "internal-api")] == 18080
    assert ports[("storage-proxy", "internal-api")] == 16023
    assert ports[("agent", "service")] == 6003 and ("agent", "watcher") not in ports
    assert "docker-cli" in d.of("packages")  # Debian 13 packages the docker command apart


def test_the_current_line_makes_its_certificate_and_checks_tls_against_it() -> None:
    d = _bai()
    inits = {i.id: i for i in d.of("inits")}
    assert "manager.main-access-key" not in inits  # 26.x has no such column
    tls = inits["storage-proxy.tls"]
    assert "openssl req -x509" in tls.run and "umask 077" in tls.run
    assert "subjectAltName=IP:127.0.0.1" in tls.run
    assert "= 600" in tls.verify
    health = {p.name: p.health for p in d.of("programs").programs}["storage-proxy"]
    assert "https://127.0.0.1:6022/ --cafile" in health and "storage-manager-api.cert.pem" in health
    volumes = next(i for i in d.of("inits") if i.id == "storage-proxy.etcd-volumes")
    assert "= https://127.0.0.1:6022 &&" in volumes.verify


def test_the_current_line_fixture_is_its_own_schema_with_the_dev_keypair() -> None:
    fx = json.loads(_files(_bai())["fixture.json"])
    [kp] = fx["keypairs"]
    assert kp["access_key"] == "AKIAIOSFODNN7EXAMPLE" and kp["is_default"] is True
    assert "user_id" not in kp  # 26.x keypairs name their user by uuid only
    [user] = fx["users"]
    assert user["uuid"] == kp["user"] and user["role"] == "superadmin"
    [link] = fx["sgroups_for_domains"]
    assert link == {
        "resource_group_id": fx["scaling_groups"][0]["id"],
        "domain_id": fx["domains"][0]["id"],
    }
    assert fx["scaling_groups"][0]["name"] == "default"  # the agent's initial-resource-group-name
    assert {t["slot_name"] for t in fx["resource_slot_types"]} == {"cpu", "mem"}


def test_23_09_keeps_its_own_keys() -> None:
    d = _bai("23.9.10")
    f = _files(d)
    assert "internal-addr" not in f["manager.toml"] + f["storage-proxy.toml"]
    ag = tomllib.loads(f["agent.toml"])
    assert ag["agent"]["scaling-group"] == "default" and "service-addr" not in ag["agent"]
    assert ag["watcher"]["service-addr"] == {"host": "127.0.0.1", "port": 6019}
    assert tomllib.loads(f["storage-proxy.toml"])["api"]["manager"]["ssl-enabled"] is False
    assert "apollo-router" not in f["webserver.conf"] and "[security]" not in f["webserver.conf"]
    assert json.loads(f["fixture.json"])["keypairs"][0]["user_id"] == "admin@lablup.com"
    inits = {i.id for i in d.of("inits")}
    assert "manager.main-access-key" in inits and "storage-proxy.tls" not in inits
    ports = {(p.service, p.name) for p in d.of("programs").ports}
    assert ("agent", "watcher") in ports and ("manager", "internal-api") not in ports
    assert "docker-cli" not in d.of("packages")  # Debian 12's docker.io has the command


def _capped(version: str) -> Desired:
    """The stack on a host whose Docker engine cannot raise its hard rlimits."""
    raw = fresh_raw(base=BASE)
    raw["kinds"]["images"] = {"session": {"nofile": 20000, "memlock": 8388608, "can_raise": False}}
    t = hosts.Target("vm", "vm", "backend.ai", BASE, {})
    return desired.build(
        load_stack("backend.ai"), t, {"backend_ai": {"version": version}}, parsed(raw)
    )


@pytest.mark.parametrize(
    ("version", "release", "tag", "distro"),
    [
        ("23.9.10", "bookworm", "lablup/python:3.11-debian12", "ubuntu22.04"),
        (CURRENT, "trixie", "lablup/python:3.13-debian13", "ubuntu24.04"),
    ],
)
def test_each_line_builds_its_kernel_image_on_the_debian_of_its_python(
    version: str, release: str, tag: str, distro: str
) -> None:
    [im] = _bai(version).of("images").images
    assert (im.ref, im.alias, im.rootfs.release) == (tag, "python", release)
    # debootstrap resolves no virtual packages: bookworm's python3-zmq also needs boost's regex
    boost = ("libboost-regex1.74.0",) if release == "bookworm" else ()
    assert im.rootfs.packages == tuple(
        sorted(("python3", "python3-ipykernel", "python3-cffi-backend", *boost))
    )
    assert f'"ai.backend.base-distro"="{distro}"' in im.dockerfile
    assert '"ai.backend.runtime-path"="/usr/bin/python3"' in im.dockerfile


def test_the_current_line_scans_the_fixtures_local_registry_for_the_image() -> None:
    d = _bai()
    im = d.of("images")
    assert "mgr image rescan local" in im.register and "--local" not in im.register
    assert 'ref=local/"$DEVKIT_IMAGE"' in im.register and 'ref=local/"$DEVKIT_IMAGE"' in im.verify
    # the registry scans only images under its project: the tag's
    [reg] = json.loads(_files(d)["fixture.json"])["container_registries"]
    assert (reg["registry_name"], reg["type"]) == ("local", "local")
    assert im.images[0].ref.startswith(reg["project"] + "/")
    # a registry to pull from is 23.09's alone (26.x keeps registries in its database)
    assert "is done for Backend.AI 23.09 only" in im.register and "etcd put" not in im.register
    old = _bai("23.9.10").of("images")
    assert "mgr image rescan --local" in old.register and "etcd put" in old.register
    assert 'ref=index.docker.io/"$DEVKIT_IMAGE"' in old.verify
    assert "container_registries" not in _files(_bai("23.9.10"))["fixture.json"]


def test_the_current_line_puts_the_admin_on_the_default_projects_roster_through_its_api() -> None:
    inits = {i.id: i for i in _bai().of("inits")}
    member = inits["manager.project-member"]
    assert member.stage == "poststart"
    assert "admin group add-users" in member.run and "env-local-admin-api.sh" in member.run
    assert "entity_memberships" in member.verify
    assert "manager.project-member" not in {i.id for i in _bai("23.9.10").of("inits")}


def test_only_23_09_gets_the_rlimit_hook_the_current_agent_caps_them_itself() -> None:
    hook = _capped("23.9.10").of("images").hook
    assert hook is not None and hook.limits == {"nofile": 20000, "memlock": 8388608}
    assert _capped(CURRENT).of("images").hook is None


# --- the generic pieces the lines use ------------------------------------------------------------


def test_refuse_stops_a_render_with_the_stacks_own_words() -> None:
    env = render.environment(stk.find("halfstack"))
    text = "{{ x if x > 1 else refuse('x is ' ~ x, 'Use 2.') }}"
    assert render.render_string(env, text, {"x": 2}, "here") == "2"
    with pytest.raises(DevkitError) as info:
        render.render_string(env, text, {"x": 1}, "stack.toml vars.x")
    assert info.value.message == "x is 1 (stack.toml vars.x)" and info.value.hint == "Use 2."


def test_an_optional_port_is_a_port_or_nothing() -> None:
    types = {"a": "optional_port", "b": "optional_port"}
    assert vartypes.check({"a": "", "b": "6003"}, types, "s").values == {"a": "", "b": 6003}
    with pytest.raises(DevkitError, match="70000 is not between 1 and 65535"):
        vartypes.check({"a": 70000, "b": ""}, types, "s")


def _ports(table: Any, where: str = "") -> dict[str, int]:
    """Every `...port` key of a parsed config that holds one port number, by its dotted name."""
    found: dict[str, int] = {}
    for key, value in table.items() if isinstance(table, dict) else ():
        name = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            found |= _ports(value, name)
        elif "port" in key and isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
    return found


@pytest.mark.parametrize("version", ["23.9.10", CURRENT])
def test_no_service_listens_on_a_port_the_kernel_hands_out_to_connections(version: str) -> None:
    # Linux picks a connection's local port from 32768-60999 (ip_local_port_range): a service
    # whose port is in there cannot bind while any connection holds it, and 23.09's aiomonitor
    # then hangs its agent's start for good (its web UI thread dies before it says it started)
    files = _files(_bai(version))
    ports = {
        f"{cfg}:{name}": port
        for cfg in ("agent.toml", "manager.toml", "storage-proxy.toml", "webserver.conf")
        for name, port in _ports(tomllib.loads(files[cfg])).items()
    }
    assert len(ports) >= 10, ports
    assert {k: p for k, p in ports.items() if 32768 <= p <= 60999} == {}
