"""The resource kind contract (kinds/base.py): every registered kind spells every hook, and a new
kind with a stack.toml group of its own is one module and one registry line (tests/unit/kinds/motd.py)."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pytest

from devkit.errors import ConfigError
from devkit.provision.engine import hosts
from devkit.provision.engine import run as engine
from devkit.provision.kinds import base, registry
from tests.fakehost import FakeHost, connector, fresh_raw
from tests.unit.kinds import motd

HOOKS = {  # the Kind protocol's functions and how many arguments each takes
    name: len(inspect.signature(fn).parameters) - 1  # less `self`
    for name, fn in vars(base.Kind).items()
    if inspect.isfunction(fn) and not name.startswith("_")
}


@pytest.mark.parametrize("kind", [*registry.KINDS, motd], ids=lambda k: k.NAME)
def test_every_kind_spells_every_hook(kind) -> None:
    assert set(HOOKS) == {
        "request", "collect", "parse", "desired", "plan", "apply",
        "refresh", "check", "finish", "diff", "steps", "notes",
    }  # fmt: skip
    for name, arity in HOOKS.items():
        fn = getattr(kind, name, None)
        assert callable(fn), f"{kind.__name__} has no {name}"
        assert len(inspect.signature(fn).parameters) == arity, f"{kind.__name__}.{name}"
    assert kind.STAGE in (base.SOURCE, base.LATER)
    assert kind.GROUP is None or kind.GROUP.key
    if kind.GROUP is not None:  # what the stack.toml reference (docs/) shows of its group
        schema = kind.GROUP.schema
        assert kind.GROUP.doc, f"{kind.__name__}: its group says nothing about itself"
        assert hasattr(schema, "keys") or hasattr(getattr(schema, "item", None), "keys"), (
            f"{kind.__name__}: its group's schema is not a table, a list or tables by name"
        )
    assert all(callable(fn) for fn in kind.REMOTE) and kind.collect in kind.REMOTE


def test_the_kinds_own_the_groups_the_stack_parser_does_not_know() -> None:
    keys = [g.key for g in registry.groups()]
    assert sorted(keys) == [
        "checkout", "cluster", "dirs", "edit", "files", "images", "secrets", "venvs",
    ]  # fmt: skip
    assert len(set(keys)) == len(keys)


STACK = """
[stack]
name = "motd-test"
[vars]
greeting = "hello"
[motd]
text = "{{ greeting }} from {{ host }}"
[services.app.program]
command = "sleep 1000"
"""


def _stack_dir(tmp_path: Path, text: str = STACK) -> str:
    (tmp_path / "stack.toml").write_text(text)
    return str(tmp_path)


def test_a_group_no_kind_owns_is_an_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        registry.load_stack(_stack_dir(tmp_path))
    assert "motd" in str(e.value) and "\n" not in str(e.value)


def test_a_new_kind_is_one_module_and_one_registry_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "KINDS", (*registry.KINDS, motd))  # the registry line
    stack = registry.load_stack(_stack_dir(tmp_path))._replace(wheels="remote")
    assert stack.group("motd") == motd.MotdSpec("{{ greeting }} from {{ host }}", 0o644)
    job = engine.Job(stack, hosts.Target("vm", "vm", str(tmp_path), "/srv/dk", {}))
    vm = FakeHost("vm", fresh_raw(base="/srv/dk"))
    [r] = engine.run([job], engine.Options({}), connector({"vm": vm}), lambda e: None)
    assert r.status == "changed" and "motd" in [o.id for o in r.ops]
    assert vm.files["/srv/dk/etc/motd"][0] == b"hello from vm\n"
    # converged: a second run plans nothing for it
    digest = hashlib.sha256(b"hello from vm\n").hexdigest()
    vm.raw_facts["kinds"]["motd"] = {"sha256": digest, "mode": "0644", "owner": "root"}
    [r2] = engine.run(
        [job], engine.Options({}, dry_run=True), connector({"vm": vm}), lambda e: None
    )
    assert "motd" not in [o.id for o in r2.ops]


def test_a_kinds_group_is_checked_by_its_own_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "KINDS", (*registry.KINDS, motd))
    with pytest.raises(ConfigError) as e:
        registry.load_stack(_stack_dir(tmp_path, STACK.replace("text =", "txet =")))
    assert "motd" in str(e.value) and "txet" in str(e.value)
