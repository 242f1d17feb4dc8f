"""The images kind through the in-memory FakeHost (no sshd, no Docker): where its ops go in the
bring-up, what it runs and records, when it runs nothing, and the rlimit hook itself (imported for
real from a package on disk). tests/e2e/test_sessions.py runs the same on a real sandbox host."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from devkit.errors import ConfigError, DevkitError
from devkit.provision.engine import desired, facts, hosts, operate, plan
from devkit.provision.engine import run as engine
from devkit.provision.kinds import images
from devkit.provision.kinds.base import Desired
from devkit.provision.kinds.registry import load_stack
from devkit.provision.onhost import rlimits
from devkit.provision.stack import spec as stk
from devkit.provision.transfer import imagefs
from tests.fakehost import FakeHost, connector, fresh_raw
from tests.unit.test_engine import converged_raw

BASE = "/srv/dk"
CAPPED = {"nofile": 20000, "memlock": 8388608, "can_raise": False}
FREE = {"nofile": 1048576, "memlock": -1, "can_raise": True}


def stack(pull: tuple[str, ...] = ()) -> stk.Stack:
    s = load_stack("backend.ai")._replace(wheels="remote")
    return images.pulling(s, pull, "pyproject.toml")


def raw(session: dict | None = None, **over: Any) -> dict[str, Any]:
    r = fresh_raw(base=BASE)
    r["kinds"]["images"] = {"session": session, **over}
    return r


def build(r: dict[str, Any], pull: tuple[str, ...] = (), overrides: dict | None = None) -> Desired:
    t = hosts.Target("vm", "vm", "backend.ai", BASE, {})
    return desired.build(stack(pull), t, overrides or {}, facts.parse(json.dumps(r)))


def ops_of(r: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    d = build(r, **kw)
    return [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]


def converged(d: Desired, session: dict | None = None) -> dict[str, Any]:
    r = converged_raw(d)
    r["kinds"]["images"] = {**images.converged(d.of("images")), "session": session}
    return r


def settled(session: dict) -> tuple[Desired, dict[str, Any]]:
    """A host the stack has been applied to, and its desired state as built from its facts."""
    r = converged(build(raw(session)), session)
    return build(r), r


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An image cache holding the stack's root filesystem already (a stand-in tarball)."""
    monkeypatch.setenv("DEVKIT_IMAGE_CACHE", str(tmp_path / "cache"))
    d = build(raw())
    [im] = d.of("images").images
    p = imagefs.path(im.rootfs)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"a root filesystem tarball")
    return p


def run(vm: FakeHost, pull: tuple[str, ...] = ()) -> Any:
    job = engine.Job(stack(pull), hosts.Target("vm", "vm", "backend.ai", BASE, {}))
    [r] = engine.run([job], engine.Options({}), connector({"vm": vm}), lambda e: None)
    return r


# --- where the ops go ---------------------------------------------------------------------------


def test_a_fresh_host_builds_and_registers_before_the_agent_starts() -> None:
    ops = ops_of(raw(CAPPED))
    i = ops.index(("rlimit-hook", "install"))
    # after the manager (its database holds the images), before the agent (its first scan)
    assert ops[i - 1] == ("program:manager", "start")
    assert ops[i : i + 4] == [
        ("rlimit-hook", "install"),
        ("image:python", "build"),
        ("image:python", "register"),
        ("program:agent", "start"),
    ]


def test_without_the_agent_on_the_host_they_come_after_the_last_service() -> None:
    r = raw(FREE)
    d = build(r)
    no_agent = d._replace(
        items={
            **d.items,
            "programs": d.of("programs")._replace(
                programs=tuple(p for p in d.of("programs").programs if p.name != "agent")
            ),
        }
    )
    ops = [(o.id, o.action) for o in plan.plan(no_agent, facts.parse(json.dumps(r)))]
    assert ops[-3:] == [
        ("program:webserver", "start"),
        ("image:python", "build"),
        ("image:python", "register"),
    ]


def test_a_host_whose_engine_can_raise_its_rlimits_gets_no_hook() -> None:
    assert ("rlimit-hook", "install") not in ops_of(raw(FREE))
    d = build(raw(CAPPED))
    hook = d.of("images").hook
    assert hook.limits == {"nofile": 20000, "memlock": 8388608}
    assert 'LIMITS: dict[str, int] = {"memlock": 8388608, "nofile": 20000}' in hook.content
    assert hook.venv == f"{BASE}/venvs/backend.ai"


def test_the_hosts_own_engine_is_judged_by_its_dockerd_not_by_the_session() -> None:
    r = raw(CAPPED, host_engine=FREE)
    r["host"]["docker"] = "unix:///var/run/docker.sock"
    d = build(r)
    assert d.of("images").engine == "unix:///var/run/docker.sock" and d.of("images").hook is None
    r["kinds"]["images"]["host_engine"] = CAPPED
    assert build(r).of("images").hook is not None


# --- what a second run does -------------------------------------------------------------------


def test_a_converged_host_plans_nothing_also_with_its_engine_down() -> None:
    d, r = settled(CAPPED)
    assert plan.plan(d, facts.parse(json.dumps(r))) == []
    r["kinds"]["images"].update(answered=False, present={})  # dockerd stopped: trust the record
    assert plan.plan(d, facts.parse(json.dumps(r))) == []


def test_a_removed_image_is_built_again_and_a_changed_label_rebuilds_it() -> None:
    d, r = settled(FREE)
    r["kinds"]["images"]["present"] = {"lablup/python:3.11-debian12": None}
    assert [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))] == [
        ("image:python", "build"),
        ("image:python", "register"),
        ("program:agent", "restart"),
    ]
    s = stack()
    im = images.spec_of(s).build[0]
    relabelled = im._replace(labels={**im.labels, "ai.backend.resource.min.mem": "512m"})
    s2 = s._replace(groups={**s.groups, "images": images.spec_of(s)._replace(build=(relabelled,))})
    t = hosts.Target("vm", "vm", "backend.ai", BASE, {})
    _, r = settled(FREE)
    d2 = desired.build(s2, t, {}, facts.parse(json.dumps(r)))
    assert d2.of("images").images[0].spec != d.of("images").images[0].spec
    ops = [(o.id, o.action) for o in plan.plan(d2, facts.parse(json.dumps(r)))]
    assert ("image:python", "build") in ops


def test_an_image_registered_under_another_id_is_registered_again_without_a_build() -> None:
    d, r = settled(FREE)
    r["kinds"]["images"]["state"]["registered"] = {"lablup/python:3.11-debian12": "sha256:old"}
    ops = [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]
    assert ops == [("image:python", "register"), ("program:agent", "restart")]


def test_an_image_registered_by_another_command_is_registered_again_without_a_build() -> None:
    """A fixed register command reaches hosts registered by the old one (and a host recorded
    before devkit kept what registered it is registered once more)."""
    d, r = settled(FREE)
    r["kinds"]["images"]["state"]["registered_by"] = {"lablup/python:3.11-debian12": "0" * 16}
    ops = [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]
    assert ops == [("image:python", "register"), ("program:agent", "restart")]
    del r["kinds"]["images"]["state"]["registered_by"]
    ops = [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]
    assert ops == [("image:python", "register"), ("program:agent", "restart")]


def test_an_alias_given_to_another_image_since_is_registered_again() -> None:
    d, r = settled(FREE)
    r["kinds"]["images"]["state"]["aliases"] = {"python": "localhost:5000/lablup/python:3.11"}
    ops = [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]
    assert ops == [("image:python", "register"), ("program:agent", "restart")]


def test_a_venv_made_again_gets_the_hook_again() -> None:
    d, r = settled(CAPPED)
    r["kinds"]["venvs"] = {"supervisor": r["kinds"]["venvs"]["supervisor"]}  # backend.ai: absent
    ops = [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]
    assert ops.index(("venv:backend.ai", "create")) < ops.index(("rlimit-hook", "install"))


def test_a_hook_in_another_venv_moves_to_the_one_the_agent_runs_from() -> None:
    # the services switched between the wheels' venv and a checkout's dev venv: the hook follows
    d, r = settled(CAPPED)
    assert d.of("images").hook.venv == f"{BASE}/venvs/backend.ai"
    r["kinds"]["images"]["state"]["hook_venv"] = "/root/backend.ai/dist/export/python/venv"
    ops = [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]
    assert ("rlimit-hook", "install") in ops


def test_a_hook_no_longer_needed_is_removed() -> None:
    d, r = settled(FREE)
    r["kinds"]["images"]["hook"] = "an-old-hash"
    ops = [(o.id, o.action) for o in plan.plan(d, facts.parse(json.dumps(r)))]
    assert ops == [("rlimit-hook", "remove"), ("program:agent", "restart")]


# --- apply, through the fake host ---------------------------------------------------------------


def _fresh_vm() -> FakeHost:
    vm = FakeHost("vm", raw(CAPPED))
    vm.on(r"image inspect devkit/rootfs:", rc=1)  # no base image in the engine yet
    vm.on(r"image inspect --format", stdout="sha256:" + "ab" * 32 + "\n")
    vm.on(r"sysconfig", stdout="/srv/dk/venvs/backend.ai/lib/python3.11/site-packages\n")
    return vm


def test_a_build_uploads_the_root_once_imports_it_and_records_what_it_made(cache: Path) -> None:
    vm = _fresh_vm()
    r = run(vm)
    assert r.status == "changed", r.error
    [upload] = [p for p in vm.files if p.startswith(f"{BASE}/data/images/")]
    assert vm.files[upload][0] == b"a root filesystem tarball" and vm.files[upload][1] == 0o600
    shown = "\n".join(vm.shown)
    assert f"docker import {upload}" in shown and f"rm -f -- {upload}" in shown
    build = next(t for op, t in vm.log if op == "image:python" and "docker build" in t)
    assert "DOCKER_BUILDKIT=0 DOCKER_HOST=unix:///srv/dk/run/docker.sock" in build
    assert '"ai.backend.base-distro"=\\"ubuntu22.04\\"' not in build  # quoted once, by q()
    assert "LABEL" in build and "devkit.image.spec" in build and 'ENV LANG="C.UTF-8"' in build
    state = json.loads(vm.files[f"{BASE}/state/images.json"][0])
    made = state["images"]["lablup/python:3.11-debian12"]
    assert made["id"] == "sha256:" + "ab" * 32
    assert state["registered"] == {"lablup/python:3.11-debian12": made["id"]}
    d_im = settled(CAPPED)[0].of("images")
    assert state["registered_by"] == {"lablup/python:3.11-debian12": images.register_digest(d_im)}
    # the register step got the image's facts as environment variables, the stack's own text shown
    reg = next(t for op, t in vm.log if op == "image:python" and "DEVKIT_IMAGE_ALIAS" in t)
    assert "DEVKIT_IMAGE=lablup/python:3.11-debian12" in reg and "DEVKIT_IMAGE_ALIAS=python" in reg
    assert "DEVKIT_IMAGE_ARCH=x86_64" in reg and "image rescan --local" in reg
    # the hook went into the venv's site-packages, a .pth importing it
    site = "/srv/dk/venvs/backend.ai/lib/python3.11/site-packages"
    assert (
        vm.files[f"{site}/_devkit_container_rlimits.pth"][0]
        == b"import _devkit_container_rlimits\n"
    )
    assert b'"nofile": 20000' in vm.files[f"{site}/_devkit_container_rlimits.py"][0]
    ids = [o.id for o in r.ops]
    assert ids.index("image:python") < ids.index("program:agent")


def test_a_base_already_in_the_engine_is_not_uploaded_again(cache: Path) -> None:
    vm = _fresh_vm()
    vm.rules.pop(0)  # `image inspect devkit/rootfs:...` succeeds
    cache.unlink()  # and the cache is not even needed
    assert run(vm).status == "changed"
    assert not any(p.startswith(f"{BASE}/data/images/") for p in vm.files)


def test_a_failing_registration_names_its_step_and_records_only_the_build(cache: Path) -> None:
    vm = _fresh_vm().on(r"DEVKIT_IMAGE_ALIAS", rc=97, stderr="verify failed: ...\n")
    r = run(vm)
    assert r.status == "failed" and r.error.op == "image:python"
    assert "register lablup/python:3.11-debian12" in r.error.cmd
    state = json.loads(vm.files[f"{BASE}/state/images.json"][0])
    assert "lablup/python:3.11-debian12" in state["images"] and state["registered"] == {}


def test_pulled_images_replace_the_built_one_and_register_from_their_registry() -> None:
    ref = "cr.backend.ai/stable/python:3.9-ubuntu20.04"
    d = build(raw(FREE), pull=(ref,))
    [im] = d.of("images").images
    assert (im.source, im.alias, im.rootfs) == ("pull", "python", None)
    vm = FakeHost("vm", raw(FREE))
    vm.on(r"image inspect --format", stdout="sha256:" + "cd" * 32 + "\n")
    r = run(vm, pull=(ref,))
    assert r.status == "changed", r.error
    assert any(f"docker pull -q {ref}" in t for t in vm.shown)
    reg = next(t for op, t in vm.log if "DEVKIT_IMAGE_REGISTRY" in t)
    assert "DEVKIT_IMAGE_REGISTRY=cr.backend.ai" in reg and "DEVKIT_IMAGE_PROJECT=stable" in reg
    assert not any("docker build" in t for _, t in vm.log)
    with pytest.raises(DevkitError, match="not an image reference"):
        build(raw(FREE), pull=("$(reboot)",))
    with pytest.raises(ConfigError, match="has no \\[images\\]"):
        images.pulling(load_stack("halfstack"), (ref,), "pyproject.toml")


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("cr.backend.ai/stable/python:3.9-ubuntu20.04", ("cr.backend.ai", "stable", "python")),
        ("localhost:5000/lablup/python:3.11", ("localhost:5000", "lablup", "python")),
        ("lablup/python-ff:23.09", ("", "lablup", "python-ff")),
        ("python", ("", "", "python")),
    ],
)
def test_registry_references_are_split(ref: str, parts: tuple[str, str, str]) -> None:
    assert images.pulled(ref) == parts


def test_status_says_what_was_built_and_that_the_hook_caps_rlimits() -> None:
    d = build(raw(CAPPED))
    f = facts.parse(json.dumps(converged(d, CAPPED)))
    lines = operate.notes(f)
    assert lines[0].startswith("image lablup/python:3.11-debian12 ") and "registered" in lines[0]
    assert "cannot raise its hard rlimits" in lines[1] and "nofile 20000" in lines[1]
    gone = converged(d, CAPPED)
    gone["kinds"]["images"]["present"] = {"lablup/python:3.11-debian12": None}
    assert "MISSING" in operate.notes(facts.parse(json.dumps(gone)))[0]


def test_the_rootfs_key_follows_release_packages_and_mirror() -> None:
    a = imagefs.spec("bookworm", "x86_64", ("python3", "b"), "http://m/debian")
    assert a.key.startswith("bookworm-amd64-") and a.packages == ("b", "python3")
    assert imagefs.spec("bookworm", "x86_64", ("b", "python3"), "http://m/debian").key == a.key
    assert imagefs.spec("trixie", "x86_64", ("b", "python3"), "http://m/debian").key != a.key
    assert imagefs.spec("bookworm", "x86_64", ("b",), "http://m/debian").key != a.key
    with pytest.raises(DevkitError, match="no Debian architecture"):
        imagefs.spec("bookworm", "sparc", (), "http://m/debian")


# --- the hook, imported for real ---------------------------------------------------------------


def test_cap_lowers_only_what_the_engine_cannot_grant() -> None:
    config = {
        "HostConfig": {
            "Ulimits": [
                {"Name": "nofile", "Soft": 1048576, "Hard": 1048576},
                {"Name": "memlock", "Soft": -1, "Hard": -1},
                {"Name": "nproc", "Soft": 50, "Hard": 100},
            ]
        }
    }
    rlimits.cap(config, {"nofile": 20000, "memlock": 8388608, "nproc": 4000})
    assert config["HostConfig"]["Ulimits"] == [
        {"Name": "nofile", "Soft": 20000, "Hard": 20000},
        {"Name": "memlock", "Soft": 8388608, "Hard": 8388608},
        {"Name": "nproc", "Soft": 50, "Hard": 100},
    ]
    assert rlimits.cap({"Image": "x"}, {"nofile": 1}) == {"Image": "x"}


def test_the_installed_hook_patches_aiodocker_when_it_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stand-in aiodocker package on disk (the real one is in the stack's venv, not here)
    pkg = tmp_path / "aiodocker"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "containers.py").write_text(
        "class DockerContainers:\n"
        "    async def create(self, config, *, name=None):\n"
        "        return config, name\n"
    )
    d = build(raw(CAPPED))
    (tmp_path / "_devkit_hook_test.py").write_text(d.of("images").hook.content)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = list(sys.meta_path)
    try:
        importlib.import_module("_devkit_hook_test")
        from aiodocker.containers import DockerContainers  # type: ignore[import-not-found]

        config = {"HostConfig": {"Ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}]}}
        got, name = asyncio.run(DockerContainers().create(config, name="k"))
        assert got["HostConfig"]["Ulimits"] == [
            {"Name": "memlock", "Soft": 8388608, "Hard": 8388608}
        ]
        assert name == "k"
    finally:
        sys.meta_path[:] = before
        for m in ("aiodocker", "aiodocker.containers", "_devkit_hook_test"):
            sys.modules.pop(m, None)
