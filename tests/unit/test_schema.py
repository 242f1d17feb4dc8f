"""devkit.schema: the declarative table checks behind [tool.devkit] (and, later, stack files)."""

from __future__ import annotations

import pytest

from devkit import schema as s
from devkit.config import build, section
from devkit.config_schema import SECTIONS
from devkit.errors import ConfigError

SERVICE = s.Table(
    s.Key("command", s.string()),
    s.Key("port", s.integer(min=1, max=65535), 0),
    s.Key("env", s.mapping(s.string()), {}),
)
STACK = s.Table(
    s.Key("name", s.string(pattern=r"[a-z][a-z0-9-]*", expected="a lower-case name")),
    s.Key("services", s.mapping(s.table(SERVICE)), {}),
    s.Key(
        "dirs",
        s.list_of(s.table(s.Table(s.Key("path", s.string()), s.Key("mode", s.string(), "0755")))),
        (),
    ),
    s.Key("timeout", s.number(), 10.0),
    s.Key("kind", s.choice("wheel", "source"), "wheel"),
)
WHERE = s.Where("stack.toml")


def error(table: s.Table, data: object, where: s.Where = WHERE) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        s.validate(table, data, where)
    return info.value


def test_defaults_fill_every_key_and_values_are_converted() -> None:
    out = s.validate(
        STACK,
        {
            "name": "half",
            "dirs": [{"path": "logs"}],
            "services": {"db": {"command": "pg", "port": 5}},
        },
        WHERE,
    )
    assert out == {
        "name": "half",
        "services": {"db": {"command": "pg", "port": 5, "env": {}}},
        "dirs": ({"path": "logs", "mode": "0755"},),
        "timeout": 10.0,
        "kind": "wheel",
    }
    assert s.validate(STACK, {"name": "x", "timeout": 3}, WHERE)["timeout"] == 3.0


def test_defaults_argument_wins_over_the_keys_own() -> None:
    out = s.validate(STACK, {"name": "x"}, WHERE, {"kind": "source"})
    assert out["kind"] == "source"
    assert (
        s.validate(STACK, {"name": "x", "kind": "wheel"}, WHERE, {"kind": "source"})["kind"]
        == "wheel"
    )


@pytest.mark.parametrize(
    ("data", "message", "hint"),
    [
        ({}, "stack.toml: name: missing", "Add `name = ...`."),
        (
            {"name": "x", "servces": {}},
            "stack.toml: servces: unknown key",
            "Did you mean `services`?",
        ),
        (
            {"name": "x", "zzz": 1},
            "stack.toml: zzz: unknown key",
            "Known keys: name, services, dirs, timeout, kind.",
        ),
        ({"name": "Bad"}, "stack.toml: name: expected a lower-case name, got 'Bad'", ""),
        (
            {"name": "x", "services": {"db": {"command": "pg", "prot": 1}}},
            "stack.toml: services.db.prot: unknown key",
            "Did you mean `port`?",
        ),
        (
            {"name": "x", "services": {"db": {"command": "pg", "port": 0}}},
            "stack.toml: services.db.port: expected an integer from 1 to 65535, got int 0",
            "",
        ),
        (
            {"name": "x", "services": {"db": {"command": "pg", "port": True}}},
            "stack.toml: services.db.port: expected an integer from 1 to 65535, got bool True",
            "",
        ),
        (
            {"name": "x", "services": {"db": {"command": "pg", "env": {"A": 1}}}},
            "stack.toml: services.db.env.A: expected a string, got int 1",
            "",
        ),
        ({"name": "x", "services": {"db": "pg"}}, "stack.toml: services.db: must be a table", ""),
        (
            {"name": "x", "dirs": [{"path": "a"}, {"mode": "0700"}]},
            "stack.toml: dirs[1].path: missing",
            "Add `path = ...`.",
        ),
        (
            {"name": "x", "dirs": {"path": "a"}},
            "stack.toml: dirs: expected a list, got dict {'path': 'a'}",
            "",
        ),
        (
            {"name": "x", "timeout": 0},
            "stack.toml: timeout: expected a finite positive number, got int 0",
            "",
        ),
        (
            {"name": "x", "kind": "wheels"},
            "stack.toml: kind: expected one of 'wheel', 'source', got 'wheels'",
            "Did you mean 'wheel'?",
        ),
        (["name"], "stack.toml: must be a table", ""),
    ],
)
def test_errors_name_file_and_key_path(data: object, message: str, hint: str) -> None:
    exc = error(STACK, data)
    assert exc.message == message
    assert exc.hint == hint


def test_where_builds_paths() -> None:
    w = s.Where("f.toml", "tool.devkit").key("hosts").key("vm").key("dirs").index(2)
    assert w.path == "tool.devkit.hosts.vm.dirs[2]"
    assert str(w.fail("bad")) == "f.toml: tool.devkit.hosts.vm.dirs[2]: bad"
    assert str(s.Where().fail("bad")) == "bad"


def test_open_tables_pass_unknown_keys_through() -> None:
    t = s.Table(s.Key("a", s.integer(), 1))
    assert s.validate(t, {"b": "x"}, WHERE, open=True) == {"b": "x", "a": 1}
    assert s.table(t, open=True)({"c": 2}, WHERE) == {"c": 2, "a": 1}


def test_string_lists_and_regexes() -> None:
    assert s.strings()(["a", "b"], WHERE) == ("a", "b")
    assert s.strings_or_regex()("feat|fix", WHERE) == "feat|fix"
    assert s.strings_or_regex()(["feat"], WHERE) == ("feat",)
    with pytest.raises(ConfigError, match=r"invalid regex '\('"):
        s.strings(s.regex())(["ok", "("], WHERE.key("exempt"))
    with pytest.raises(ConfigError, match="expected a regex string, got int 3"):
        s.regex()(3, WHERE)
    with pytest.raises(ConfigError, match="expected a list of strings, got list"):
        s.strings()(["a", 1], WHERE)
    assert s.anything()(object, WHERE) is object


def test_mapping_checks_its_keys() -> None:
    def lower(name: str, where: s.Where) -> str:
        if name != name.lower():
            raise where.fail("host names are lower case")
        return name

    with pytest.raises(ConfigError, match=r"^f: hosts\.VM: host names are lower case$"):
        s.mapping(s.anything(), key=lower)({"VM": {}}, s.Where("f", "hosts"))


def test_devkit_sections_are_declared_once_and_take_preset_defaults() -> None:
    assert set(SECTIONS) == {"ci", "lint", "init"}
    assert section(build({}, "", ""), "ci")["checks"] == (
        "branch",
        "commit",
        "title",
        "news",
        "lint",
    )
    # a commit message's severity is the commit table's, for the hooks and `devkit ci` alike
    assert build({}, "", "").commit.severity == "error"
    assert build({"preset": "backend.ai"}, "", "").commit.severity == "warning"
    cfg = build({"preset": "backend.ai", "commit": {"severity": "error"}}, "", "")
    assert cfg.commit.severity == "error"
    with pytest.raises(ConfigError, match=r"^f: tool\.devkit\.ci\.checks: unknown check 'lnt'$"):
        section(build({"ci": {"checks": ["lnt"]}}, "f", ""), "ci")


def test_a_preset_that_is_not_a_string_is_a_config_error() -> None:
    # issue 12 item 20: this was an "internal error" (unhashable list)
    with pytest.raises(ConfigError, match=r"^f: tool\.devkit\.preset: expected a string, got list"):
        build({"preset": ["conventional"]}, "f", "")


def test_a_bad_exempt_regex_is_a_config_error() -> None:
    # issue 12 item 20: this was an "internal error" from re when a branch was checked
    with pytest.raises(
        ConfigError, match=r"^f: tool\.devkit\.branch\.exempt: invalid regex '\(main'"
    ):
        build({"branch": {"exempt": ["(main"]}}, "f", "")


def test_rule_severities_by_code_or_name_over_the_preset() -> None:
    from devkit.checks.commit import text_report

    cfg = build(
        {
            "preset": "backend.ai",
            "rules": {"scope-enum": "error", "CM002": "off"},
            "commit": {"severity": "error"},
        },
        "f",
        "",
    )
    assert cfg.rules["CM005"] == "error" and cfg.rules["BR001"] == "warning"
    report = text_report("feat(BA- 1):x", cfg)
    assert [(v.code, v.severity) for v in report.violations] == [("CM005", "error")]
    with pytest.raises(
        ConfigError, match=r"^f: tool\.devkit\.rules\.scope-enums: unknown key$"
    ) as info:
        build({"rules": {"scope-enums": "off"}}, "f", "")
    assert info.value.hint == "Did you mean `scope-enum`?"
    with pytest.raises(
        ConfigError, match=r"tool\.devkit\.rules\.CM005: expected one of 'error', 'warning', 'off'"
    ):
        build({"rules": {"CM005": "warn"}}, "f", "")
