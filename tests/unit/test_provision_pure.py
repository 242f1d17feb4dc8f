"""Pure parts of the provisioning engine: hosts, stack loading, rendering errors, the plan (facts as data)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from devkit.errors import ConfigError, DevkitError
from devkit.provision.engine import desired, facts, hosts, plan
from devkit.provision.kinds import dirs, files, images, inits, packages, programs, secrets
from devkit.provision.kinds.base import Desired, Facts, HostInfo
from devkit.provision.kinds.registry import load_stack
from devkit.provision.ssh import address
from devkit.provision.stack import spec as stk


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
    assert tuple(address.parse_address(text)) == want


@pytest.mark.parametrize("text", ["", "a b", "user@", "host:0", "host:70000", "a@b@c"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(DevkitError):
        address.parse_address(text)


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
        hosts.target(
            "vm", hosts.load({"hosts": {"vm": {"bse_dir": "/x"}}}, "pyproject.toml"), "halfstack"
        )
    assert "pyproject.toml: tool.devkit.hosts.vm.bse_dir: unknown key" in exc.value.message


def test_every_hosts_vars_then_a_hosts_own_then_set() -> None:
    extra = {
        "provision": {"vars": {"postgres": {"port": 15432, "user": "dev"}}},
        "hosts": {"vm": {"vars": {"postgres": {"port": 25432}}}},
    }
    s = load_stack("halfstack")
    v = desired.variables(
        s, hosts.target("vm", hosts.load(extra, "pyproject.toml"), "halfstack"), {}
    )
    assert (v["postgres"]["port"], v["postgres"]["user"]) == (25432, "dev")
    v = desired.variables(
        s, hosts.target("other", hosts.load(extra, "pyproject.toml"), "halfstack"), {}
    )
    assert v["postgres"]["port"] == 15432
    v = desired.variables(
        s, hosts.target("vm", hosts.load(extra, "p"), "halfstack"), {"postgres": {"port": 1}}
    )
    assert v["postgres"]["port"] == 1
    extra["provision"]["vars"] = {"postgres": {"prot": 1}}
    t = hosts.target("vm", hosts.load(extra, "pyproject.toml"), "halfstack")
    with pytest.raises(
        DevkitError, match=r"\[tool.devkit.provision.vars\]: unknown stack variable `postgres.prot`"
    ):
        desired.variables(s, t, {})


def test_halfstack_loads() -> None:
    s = load_stack("halfstack")
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
        load_stack(str(tmp_path))


def test_stack_dest_must_stay_inside_base(tmp_path: Path) -> None:
    _write(
        tmp_path,
        '[services.s]\nfiles = [{ template = "t.j2", dest = "../etc/passwd" }]\n'
        '[services.s.program]\ncommand = "x"\n',
    )
    with pytest.raises(ConfigError, match="relative path inside the base dir"):
        load_stack(str(tmp_path))


RAW = Path(__file__).with_name("provision_facts_converged.json").read_text()


def _facts(**over: object) -> Facts:
    """The recorded facts of a converged halfstack host; host fields and kinds can be replaced."""
    f = facts.parse(RAW)
    host = {k: v for k, v in over.items() if k in HostInfo._fields}
    kinds = {k: v for k, v in over.items() if k in f.kinds}
    assert set(over) == set(host) | set(kinds), over
    return Facts(f.host._replace(**host), {**f.kinds, **kinds})


def _file_facts(d: Desired) -> dict[str, files.FileStat]:
    """What the facts script reports for the desired files once they are written."""
    return {
        x.dest: files.FileStat(
            f"{x.mode:04o}", x.owner, hashlib.sha256(x.content.encode()).hexdigest()
        )
        for x in d.of("files")
    }


def _with(f: Facts, **kinds: object) -> Facts:
    return f._replace(kinds={**f.kinds, **kinds})


def _applied(f: Facts, d: Desired) -> Facts:
    """f with the desired files written and every program started with its current hash."""
    pf = f.of("programs")._replace(applied={p.name: p.hash for p in d.of("programs").programs})
    markers = {i.id: i.hash for i in d.of("inits")}
    return _with(f, files=_file_facts(d), programs=pf, inits=inits.InitFacts(markers, {}))


def _target() -> hosts.Target:
    return hosts.Target("vm", "vm", "halfstack", "/srv/dk", {})


def test_undefined_variable_in_a_template_is_one_clear_error(tmp_path: Path) -> None:
    _write(
        tmp_path,
        '[vars]\na = 1\n[services.s]\nfiles = [{ template = "t.j2", dest = "etc/t", format = "text" }]\n'
        '[services.s.program]\ncommand = "x"\n',
        template="ok\n{{ missing }}\n",
    )
    s = load_stack(str(tmp_path))
    with pytest.raises(
        DevkitError, match=r"template t\.j2 line 2: undefined variable: 'missing' is undefined"
    ):
        desired.build(s, _target(), {}, _facts())


def test_plan_for_converged_facts_is_empty() -> None:
    s = load_stack("halfstack")
    f = _facts()
    d = desired.build(s, _target(), {}, f)
    # the recorded facts were taken from a converged host; re-derive the file hashes they must match
    f = _applied(f, d)
    assert plan.plan(d, f) == []


def test_plan_changed_port_touches_one_file_and_one_program() -> None:
    s = load_stack("halfstack")
    f = _facts()
    d = desired.build(s, _target(), {}, f)
    f = _applied(f, d)
    d2 = desired.build(s, _target(), {"redis": {"port": 9999}}, f)
    ops = plan.plan(d2, f)
    assert [(o.id, o.action) for o in ops] == [
        ("file:redis.conf", "update"),
        ("file:services.json", "update"),
        ("program:redis", "restart"),
    ]


def test_plan_fresh_host_orders_ops() -> None:
    s = load_stack("halfstack")
    empty = facts.fresh(_facts().host)
    ops = [o.id for o in plan.plan(desired.build(s, _target(), {}, empty), empty)]
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


# --- the backend.ai stack: extends the halfstack, conditional docker, ordered bring-up ---------


def _bai(facts_over: dict | None = None, overrides: dict | None = None) -> Desired:
    s = load_stack("backend.ai")
    t = hosts.Target("vm", "vm", "backend.ai", "/srv/dk", {})
    return desired.build(s, t, overrides or {}, _facts(**(facts_over or {})))


def _conf(d: Desired, name: str) -> str:
    return next(f.content for f in d.of("files") if f.id == f"program:{name}")


def test_backendai_extends_the_halfstack() -> None:
    s = load_stack("backend.ai")
    assert [x.name for x in s.services] == [
        "postgres",
        "redis",
        "etcd",
        "docker",
        "storage-proxy",
        "manager",
        "agent",
        "webserver",
        "devkit-watch",  # the edit loop's watcher: there only in source mode with watch on
    ]
    assert s.vars["postgres"]["port"] == 8101 and s.vars["postgres"]["database"] == "backend"
    assert s.vars["manager"]["port"] == 8091 and s.vars["webserver"]["port"] == 8090
    assert {"postgres_password", "storage_manager_secret", "storage_secret"} <= set(
        secrets.declared(s)
    )


def test_backendai_edit_loop_maps_each_package_to_the_services_that_import_it() -> None:
    from devkit.provision.kinds import edit as edit_kind

    def watcher(d: Desired) -> bool:
        return "devkit-watch" in [p.name for p in d.of("programs").programs]

    assert not watcher(_bai())
    src = {"backend_ai": {"source": "https://github.com/lablup/backend.ai@main"}}
    assert not watcher(_bai(overrides=src))
    assert watcher(_bai(overrides={**src, "source": {"watch": True}}))
    assert not watcher(_bai(overrides={"source": {"watch": True}}))  # the wheels: nothing to watch
    # from source the checkout's BUILD files offer every accelerator plugin: the agent loads none
    agent = next(f.content for f in _bai(overrides=src).of("files") if f.id == "agent.toml")
    assert "allow-compute-plugins = []" in agent
    assert "compute-plugins" not in next(
        f.content for f in _bai().of("files") if f.id == "agent.toml"
    )
    rules = edit_kind.spec_of(load_stack("backend.ai"))
    assert rules is not None
    common = "src/ai/backend/common/"
    assert all(any(p.startswith(common) for p in v) for v in rules.restart.values())
    assert set(rules.restart) == {"manager", "agent", "storage-proxy", "webserver"}
    assert [n.paths[0] for n in rules.notes] == [
        "src/ai/backend/kernel/**",
        "src/ai/backend/accelerator/**",  # the agent loads none of them here
    ]
    assert edit_kind.WATCHER == "devkit-watch"


def test_backendai_runs_its_own_dockerd_without_a_host_engine() -> None:
    d = _bai()
    assert "docker.io" in d.of("packages")
    conf = _conf(d, "docker")
    # its own bridge for the containers' ports, but no iptables rules and no forwarding
    assert "--bridge=none" not in conf
    assert " --iptables=false --ip-forward=false --ip-masq=false" in conf
    host = _bai(overrides={"docker": {"network": "host"}})
    assert "--bridge=none --iptables=false" in _conf(host, "docker")
    agent_toml = next(f.content for f in host.of("files") if f.id == "agent.toml")
    assert 'alternative-bridge = "host"' in agent_toml
    assert "alternative-bridge" not in next(
        f.content for f in d.of("files") if f.id == "agent.toml"
    )
    assert "--data-root /srv/dk/data/docker" in conf and "stopasgroup=false" in conf
    for svc in ("manager", "agent"):
        assert 'DOCKER_HOST="unix:///srv/dk/run/docker.sock"' in _conf(d, svc)
    assert [p.name for p in programs.ordered(d.of("programs").programs)] == [
        "postgres",
        "redis",
        "etcd",
        "docker",
        "storage-proxy",
        "manager",
        "agent",
        "webserver",
    ]


def test_backendai_uses_the_hosts_docker_when_it_answers() -> None:
    d = _bai({"docker": "unix:///var/run/docker.sock"})
    assert "docker.io" not in d.of("packages")
    assert "docker" not in [p.name for p in d.of("programs").programs]
    assert 'DOCKER_HOST="unix:///var/run/docker.sock"' in _conf(d, "agent")
    forced = _bai({"docker": "unix:///var/run/docker.sock"}, {"docker": {"engine": "devkit"}})
    assert "docker" in [p.name for p in forced.of("programs").programs]


def test_backendai_configs_carry_ports_paths_and_generated_secrets() -> None:
    d = _bai(overrides={"backend_ai": {"version": "23.9.9"}, "manager": {"port": 18091}})
    files = {f.id: f for f in d.of("files")}
    assert "port = 18091" in files["manager.toml"].content
    assert '"http://127.0.0.1:18091"' in files["webserver.conf"].content
    assert files["manager.toml"].mode == 0o600 and files["storage-proxy.toml"].mode == 0o600
    secret = d.secrets["storage_manager_secret"]
    assert len(secret) == 64
    assert secret in files["storage-proxy.toml"].content
    assert secret in files["etcd-volumes.json"].content
    assert "/tmp/backend.ai" not in "".join(f.content for f in d.of("files"))
    venv = next(v for v in d.of("venvs") if v.name == "backend.ai")
    assert "backend.ai-manager==23.9.9" in venv.requirements
    assert venv.constraints == ("yarl==1.9.4",) and venv.python_version == "3.11"
    assert json.loads(files["fixture.json"].content)["keypairs"][0]["access_key"] == (
        "AKIAIOSFODNN7EXAMPLE"
    )


def _converged(d: Desired) -> Facts:
    f = _facts()
    running = {p.name: programs.ProgramState("RUNNING", 1, 60) for p in d.of("programs").programs}
    pf = f.of("programs")._replace(
        running=True, programs=running, applied={p.name: p.hash for p in d.of("programs").programs}
    )
    return _with(
        f,
        files=_file_facts(d),
        programs=pf,
        inits=inits.InitFacts({i.id: i.hash for i in d.of("inits")}, {}),
        secrets=dict(d.secrets),
        venvs={v.name: v.spec for v in d.of("venvs")},
        dirs=dirs.DirFacts(
            {x.path: dirs.Stat(f"{x.mode:04o}", x.owner) for x in d.of("dirs")},
            "backend.ai\n",
            f.of("dirs").ancestors,
        ),
        packages=packages.PackageFacts(dict.fromkeys(d.of("packages"), True), None),
        images=images.parse(images.converged(d.of("images"))),
    )


def test_backendai_fresh_host_runs_each_init_before_its_program() -> None:
    d = _bai()
    stopped = _facts().of("programs")._replace(running=False)
    ops = [o.id for o in plan.plan(d, _facts(programs=stopped, inits=inits.InitFacts({}, {})))]
    order = [o for o in ops if o.startswith(("init:", "program:"))]
    assert order == [
        "init:postgres.initdb",
        "program:postgres",
        "init:postgres.database",
        "program:redis",
        "program:etcd",
        "program:docker",
        "init:storage-proxy.vfroot",
        "init:storage-proxy.rpc-keypair",
        "init:storage-proxy.etcd-config",
        "init:storage-proxy.etcd-volumes",
        "program:storage-proxy",
        "init:manager.schema",
        "init:manager.fixture",
        "init:manager.main-access-key",
        "program:manager",
        "program:agent",
        "program:webserver",
    ]


def test_backendai_changed_etcd_document_reruns_its_step_and_restarts_readers() -> None:
    first = _bai()
    d = _bai({"secrets": dict(first.secrets)})
    f = _converged(d)
    assert plan.plan(d, f) == []
    d2 = _bai({"secrets": dict(first.secrets)}, {"redis": {"port": 8112}})
    ops = [(o.id, o.action) for o in plan.plan(d2, f)]
    assert ("init:storage-proxy.etcd-config", "run") in ops
    assert ("init:storage-proxy.etcd-volumes", "run") not in ops  # its document is unchanged
    restarted = {i for i, a in ops if i.startswith("program:") and a == "restart"}
    assert restarted == {
        "program:redis",
        "program:storage-proxy",
        "program:manager",
        "program:agent",
        "program:webserver",  # its own webserver.conf names the Redis port
    }
    assert ("file:webserver.conf", "update") in ops


def test_port_conflicts_name_port_and_service_but_not_our_own() -> None:
    d = _bai()
    f = _converged(d)
    f = _with(f, programs=f.of("programs")._replace(ports=(("manager", 8091),)))
    f = f._replace(host=f.host._replace(listening=(8091, 22)))
    assert programs.conflicts(d, f) == []
    stopped = _with(f, programs=f.of("programs")._replace(programs={}))
    assert programs.conflicts(d, stopped) == ["port 8091 (manager api)"]
    fresh = _facts(listening=(8090, 6011))
    assert programs.conflicts(_bai(), fresh) == [
        "port 6011 (agent rpc)",
        "port 8090 (webserver web)",
    ]


def test_variables_may_refer_to_later_ones(tmp_path: Path) -> None:
    _write(
        tmp_path,
        '[vars]\na.first = "{{ a.second }}-1"\na.second = "{{ a.third }}-2"\na.third = "x"\n'
        '[services.s]\nfiles = [{ template = "t.j2", dest = "etc/t", format = "text" }]\n'
        '[services.s.program]\ncommand = "x"\n',
        template="{{ a.first }}\n",
    )
    d = desired.build(load_stack(str(tmp_path)), _target(), {}, _facts())
    assert next(f.content for f in d.of("files") if f.id == "t") == "x-2-1\n"


def test_extends_rejects_redefining_a_service(tmp_path: Path) -> None:
    _write(tmp_path, '[stack]\nextends = "halfstack"\n[services.redis.program]\ncommand = "x"\n')
    with pytest.raises(ConfigError, match="already defined by halfstack"):
        load_stack(str(tmp_path))


def test_single_host_commands_default_to_the_configured_host_or_the_sandbox(
    tmp_path, monkeypatch
) -> None:
    from devkit.commands import _hosts as seam

    monkeypatch.setenv("DEVKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.devkit]\n")
    with pytest.raises(
        DevkitError, match="no host given and the sandbox host `sandbox` is not running"
    ):
        seam.running(seam.resolve(seam.Selection()))
    (tmp_path / "pyproject.toml").write_text(
        '[tool.devkit.provision]\nhosts = ["dev@vm1:2222", "vm2"]\n'
    )
    [first, second] = seam.resolve(seam.Selection()).targets
    assert (first.name, second.name) == ("dev@vm1:2222", "vm2")


def test_one_word_naming_a_service_is_the_service_of_the_default_host(
    tmp_path, monkeypatch
) -> None:
    import argparse

    from devkit.commands.operate import _host_or_service

    monkeypatch.setenv("DEVKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.devkit.hosts.agent]\nbase_dir = "/srv/dk"\n')

    def shifted(host: str | None, service: str | None = None) -> tuple[str | None, str | None]:
        args = argparse.Namespace(host=host, service=service, stack=None, config=None)
        _host_or_service(args)
        return args.host, args.service

    assert shifted("manager") == (None, "manager")  # a service of the default (backend.ai) stack
    assert shifted("vm1") == ("vm1", None)  # not a service: a host
    assert shifted("agent") == ("agent", None)  # a configured host wins over a service name
    assert shifted("vm1", "manager") == ("vm1", "manager")


@pytest.mark.parametrize("value", ["x'; rm -rf /", 'a"b', "has space", "$(id)"])
def test_sql_names_with_quotes_are_refused_before_anything_is_written(value: str) -> None:
    s = load_stack("halfstack")
    with pytest.raises(DevkitError, match="is not a plain identifier") as info:
        desired.build(s, _target(), {"postgres": {"database": value}}, _facts())
    assert "postgres.database" in str(info.value) or "init" in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"agent": {"metadata_port": "1\nevil = true"}}, "variable `agent.metadata_port`"),
        ({"agent": {"metadata_port": 70000}}, "70000 is not between 1 and 65535"),
        ({"backend_ai": {"namespace": "x$(id)"}}, "variable `backend_ai.namespace`"),
        ({"postgres": {"bindir": "/usr/bin\nlisten_addresses = '*'"}}, "spans more than one line"),
    ],
)
def test_typed_variables_refuse_bad_values_before_anything_is_rendered(
    override: dict, message: str
) -> None:
    with pytest.raises(DevkitError, match=re.escape(message)) as info:
        _bai(overrides=override)
    assert "[types]" in info.value.hint


def test_values_reach_shells_and_configs_quoted_for_their_language() -> None:
    d = _bai(overrides={"postgres": {"bindir": "/opt/pg 15/bin"}, "admin": {"email": 'a"b@x'}})
    files = {f.id: f.content for f in d.of("files")}
    assert "'/opt/pg 15/bin/postgres'" in files["program:postgres"]
    assert 'metadata-server-bind-host = "127.0.0.1"' in files["agent.toml"]
    conf = next(i for i in d.of("inits") if i.id == "manager.main-access-key")
    assert "'a\"b@x'" in conf.run  # a SQL literal, inside a shell word
    tomllib = __import__("tomllib")
    for name in ("agent.toml", "manager.toml", "storage-proxy.toml", "webserver.conf"):
        tomllib.loads(files[name])  # every TOML file parses


def test_declared_secrets_are_masked_like_generated_ones() -> None:
    d = _bai(overrides={"admin": {"password": "Hunter2-Hunter2"}})
    assert d.secrets["var:admin.password"] == "Hunter2-Hunter2"
    from devkit.provision.engine.events import OpResult, Redact

    op = OpResult("file:fixture.json", "update", "etc/fixture.json", "planned", "+ Hunter2-Hunter2")
    assert "Hunter2" not in Redact.of(d.secrets).op(op).diff


def test_a_host_name_with_a_newline_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="a host's name is an ssh_config alias"):
        hosts.target(
            "vm", hosts.load({"hosts": {"vm\nlisten_addresses='*'": {}}}, "pyproject.toml"), "x"
        )
    with pytest.raises(DevkitError, match="is not a host"):
        hosts.target("a b", hosts.load({}, "pyproject.toml"), "x")


def test_types_name_real_variables_and_known_types(tmp_path: Path) -> None:
    _write(tmp_path, '[vars]\na = 1\n[types]\nb = "port"\n[services.s.program]\ncommand = "x"\n')
    with pytest.raises(ConfigError, match=r"types\.b: no such variable"):
        load_stack(str(tmp_path))
    _write(tmp_path, '[vars]\na = 1\n[types]\na = "prot"\n[services.s.program]\ncommand = "x"\n')
    with pytest.raises(ConfigError, match=r"types\.a: unknown type 'prot'"):
        load_stack(str(tmp_path))


def test_compiled_templates_are_cached_and_a_broken_cache_is_only_slower(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devkit.provision.stack import render

    monkeypatch.setenv("DEVKIT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "t.toml.j2").write_text("port = {{ port | toml }}\n")
    first = render.environment(tmp_path)
    assert (
        render.render_string(first, "{{ a }}-{{ b | q }}", {"a": 1, "b": "x y"}, "w") == "1-'x y'"
    )
    assert render.render_file(first, "t.toml.j2", {"port": 8080}) == "port = 8080\n"
    render.render_string(first, "{{ b }}", {"b": "another string"}, "w")
    cached = sorted((tmp_path / "cache" / "templates").glob("*.code"))
    assert len(cached) == 3  # one per string and one per file
    # the next run compiles nothing: a source change is a new key, so a stale file is never used
    second = render.environment(tmp_path)
    monkeypatch.setattr(second, "compile", lambda *a, **k: pytest.fail("compiled again"))
    assert render.render_string(second, "{{ a }}-{{ b | q }}", {"a": 2, "b": "z"}, "w") == "2-z"
    assert render.render_file(second, "t.toml.j2", {"port": 1}) == "port = 1\n"
    for f in cached:
        f.write_bytes(b"not bytecode")
    third = render.environment(tmp_path)
    assert render.render_string(third, "{{ a }}", {"a": 3}, "w") == "3"
    assert render.render_file(third, "t.toml.j2", {"port": 2}) == "port = 2\n"
    (tmp_path / "cache2").write_text("")  # a cache dir that cannot be made
    monkeypatch.setenv("DEVKIT_CACHE_DIR", str(tmp_path / "cache2"))
    assert render.render_string(render.environment(tmp_path), "{{ a }}!", {"a": 4}, "w") == "4!"
