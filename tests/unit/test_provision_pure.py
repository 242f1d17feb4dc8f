"""Pure parts of the provisioning engine: hosts, stack loading, rendering errors, the plan (facts as data)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from devkit.errors import ConfigError, DevkitError
from devkit.provision import desired, facts, hosts, plan
from devkit.provision import stack as stk


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("devbox", ("", "devbox", None)),
        ("ubuntu@10.0.0.5", ("ubuntu", "10.0.0.5", None)),
        ("root@vm.example.org:2222", ("root", "vm.example.org", 2222)),
        ("[::1]:22", ("", "::1", 22)),
    ],
)
def test_parse_address(text: str, want: tuple) -> None:
    assert tuple(hosts.parse_address(text)) == want


@pytest.mark.parametrize("text", ["", "a b", "user@", "host:0", "host:70000", "a@b@c"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(DevkitError):
        hosts.parse_address(text)


def test_parse_set_types_and_nesting() -> None:
    assert hosts.parse_set(["postgres.port=15432", "a.b=x y", "f=true"]) == {
        "postgres": {"port": 15432},
        "a": {"b": "x y"},
        "f": True,
    }
    with pytest.raises(DevkitError, match="NAME=VALUE"):
        hosts.parse_set(["nonsense"])


def test_unknown_stack_variable_is_named() -> None:
    with pytest.raises(DevkitError, match=r"unknown stack variable `postgres\.prot`"):
        hosts.merge({"postgres": {"port": 1}}, {"postgres": {"prot": 2}}, "--set")


def test_host_table_unknown_key_names_file_and_key() -> None:
    with pytest.raises(ConfigError) as exc:
        hosts.target("vm", {"hosts": {"vm": {"bse_dir": "/x"}}}, "pyproject.toml", "halfstack")
    assert "pyproject.toml: tool.devkit.hosts.vm.bse_dir: unknown key" in exc.value.message


def test_halfstack_loads() -> None:
    s = stk.load("halfstack")
    assert [x.name for x in s.services] == ["postgres", "redis", "etcd"]
    assert (
        s.vars["postgres"]["port"] == 8101
        and s.vars["redis"]["port"] == 8111
        and s.vars["etcd"]["port"] == 8121
    )
    assert [i.id for i in s.services[0].init] == ["postgres.initdb", "postgres.database"]
    assert "etcd-server" in stk.all_packages(s)


def _write(tmp: Path, toml: str, template: str = "x = {{ a }}\n") -> Path:
    (tmp / "t.j2").write_text(template)
    (tmp / "stack.toml").write_text(toml)
    return tmp


def test_stack_unknown_key_is_named(tmp_path: Path) -> None:
    _write(tmp_path, '[services.s.program]\ncommand = "x"\nstopsignl = "INT"\n')
    with pytest.raises(ConfigError, match=r"services\.s\.program\.stopsignl: unknown key"):
        stk.load(str(tmp_path))


def test_stack_dest_must_stay_inside_base(tmp_path: Path) -> None:
    _write(
        tmp_path,
        '[services.s]\nfiles = [{ template = "t.j2", dest = "../etc/passwd" }]\n'
        '[services.s.program]\ncommand = "x"\n',
    )
    with pytest.raises(ConfigError, match="relative path inside the base dir"):
        stk.load(str(tmp_path))


FACTS = json.loads(Path(__file__).with_name("provision_facts_converged.json").read_text())


def _facts(**over: object) -> facts.Facts:
    return facts.Facts(**{**{k: FACTS.get(k) for k in facts.Facts._fields if k in FACTS}, **over})


def _target() -> hosts.Target:
    return hosts.Target("vm", "vm", "halfstack", "/srv/dk", {})


def test_undefined_variable_in_a_template_is_one_clear_error(tmp_path: Path) -> None:
    _write(
        tmp_path,
        '[vars]\na = 1\n[services.s]\nfiles = [{ template = "t.j2", dest = "etc/t" }]\n'
        '[services.s.program]\ncommand = "x"\n',
        template="ok\n{{ missing }}\n",
    )
    s = stk.load(str(tmp_path))
    with pytest.raises(
        DevkitError, match=r"template t\.j2 line 2: undefined variable: 'missing' is undefined"
    ):
        desired.build(s, _target(), {}, _facts())


def test_plan_for_converged_facts_is_empty() -> None:
    s = stk.load("halfstack")
    f = _facts()
    d = desired.build(s, _target(), {}, f)
    # the recorded facts were taken from a converged host; re-derive the file hashes they must match
    files = {
        x.dest: {
            "sha256": hashlib.sha256(x.content.encode()).hexdigest(),
            "mode": f"{x.mode:04o}",
            "owner": x.owner,
        }
        for x in d.files
    }
    applied = {p.name: p.hash for p in d.programs}
    f = f._replace(files=files, applied=applied)
    assert plan.plan(d, f, "halfstack") == []


def test_plan_changed_port_touches_one_file_and_one_program() -> None:
    s = stk.load("halfstack")
    f = _facts()
    d = desired.build(s, _target(), {}, f)
    files = {
        x.dest: {
            "sha256": hashlib.sha256(x.content.encode()).hexdigest(),
            "mode": f"{x.mode:04o}",
            "owner": x.owner,
        }
        for x in d.files
    }
    f = f._replace(files=files, applied={p.name: p.hash for p in d.programs})
    d2 = desired.build(s, _target(), {"redis": {"port": 9999}}, f)
    ops = plan.plan(d2, f, "halfstack")
    assert [(o.id, o.action) for o in ops] == [
        ("file:redis.conf", "update"),
        ("file:services.json", "update"),
        ("program:redis", "restart"),
    ]


def test_plan_fresh_host_orders_ops() -> None:
    s = stk.load("halfstack")
    empty = _facts(
        packages={},
        dirs={},
        files={},
        secrets={},
        markers=[],
        venvs={},
        applied={},
        supervisor={"running": False, "programs": {}},
        base_marker=None,
    )
    ops = [o.id for o in plan.plan(desired.build(s, _target(), {}, empty), empty, "halfstack")]
    assert ops[0] == "packages" and ops[1] == "dirs"
    # supervisord first, then each service in order: prestart steps, program, poststart steps
    assert ops.index("supervisord") < ops.index("init:postgres.initdb")
    assert ops[ops.index("init:postgres.initdb") :][:4] == [
        "init:postgres.initdb",
        "program:postgres",
        "init:postgres.database",
        "program:redis",
    ]
    assert ops[-1] == "program:etcd"
    assert "secret:postgres_password" in ops
