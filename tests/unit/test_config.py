from __future__ import annotations

from pathlib import Path

import pytest

from devkit.config import build, load, section
from devkit.errors import ConfigError


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    s = load(tmp_path)
    assert s.preset == "conventional" and s.source == ""
    assert "feat" in s.commit.types


def test_overrides_merge_over_the_preset(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.devkit]\npreset = "backend.ai"\n[tool.devkit.commit]\nheader_max_length = 80\ntypes = "feat|fix"\n'
        "[tool.devkit.hosts.vm1]\nbase_dir = '/srv'\n"
    )
    s = load(tmp_path)
    assert s.commit.header_max_length == 80
    assert s.commit.types == "feat|fix"
    assert s.commit.squash_suffix is True  # still from the preset
    assert s.extra == {"hosts": {"vm1": {"base_dir": "/srv"}}}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"presett": "x"}, "f.toml: tool.devkit.presett: unknown key"),
        ({"preset": "angular"}, "f.toml: tool.devkit.preset: unknown preset 'angular'"),
        (
            {"commit": {"header_max_lenght": 72}},
            "f.toml: tool.devkit.commit.header_max_lenght: unknown key",
        ),
        (
            {"commit": {"header_max_length": "72"}},
            "f.toml: tool.devkit.commit.header_max_length: expected a non-negative integer, got str '72'",
        ),
        (
            {"commit": {"types": "feat|("}},
            "f.toml: tool.devkit.commit.types: invalid regex 'feat|('",
        ),
        (
            {"commit": {"types": [1, 2]}},
            "f.toml: tool.devkit.commit.types: expected a list of strings or a regex string",
        ),
        (
            {"commit": {"subject_case": "title"}},
            "f.toml: tool.devkit.commit.subject_case: expected one of 'any', 'lower', 'upper', got 'title'",
        ),
        (
            {"news": {"single_line": "yes"}},
            "f.toml: tool.devkit.news.single_line: expected true or false",
        ),
        (
            {"branch": {"patterns": ["(unclosed"]}},
            "f.toml: tool.devkit.branch.patterns: invalid regex",
        ),
        ({"commit": 3}, "f.toml: tool.devkit.commit: must be a table"),
    ],
)
def test_bad_config_names_the_key(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(table, "f.toml", ".")
    assert str(info.value).startswith(message)


def test_near_miss_key_gets_a_hint() -> None:
    with pytest.raises(ConfigError) as info:
        build({"commit": {"header_max_lenght": 72}}, "f.toml", ".")
    assert info.value.hint == "Did you mean `header_max_length`?"


def test_a_key_that_moved_says_where_it_lives_now() -> None:
    cfg = build({"ci": {"commit_severity": "warning"}}, "f.toml", ".")
    with pytest.raises(ConfigError) as info:
        section(cfg, "ci")
    assert "tool.devkit.ci.commit_severity: this key moved" in str(info.value)
    assert info.value.hint == "Set `[tool.devkit.commit] severity` instead."


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.devkit\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load(tmp_path)


def test_parsed_table_is_cached_in_git_dir_and_invalidated_on_change(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    py = tmp_path / "pyproject.toml"
    py.write_text("[tool.devkit.commit]\nheader_max_length = 50\n")
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    assert load(sub).commit.header_max_length == 50
    assert (tmp_path / ".git" / "devkit-config.cache").is_file()
    assert load(sub).commit.header_max_length == 50  # from the cache
    py.write_text("[tool.devkit.commit]\nheader_max_length = 72\n")
    assert load(sub).commit.header_max_length == 72
    (tmp_path / ".git" / "devkit-config.cache").write_bytes(b"garbage")
    assert load(sub).commit.header_max_length == 72


@pytest.mark.parametrize(
    ("text", "key"), [("tool = 3\n", "tool"), ("[tool]\ndevkit = 3\n", "tool.devkit")]
)
def test_tool_tables_of_the_wrong_type(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}/pyproject.toml: {key}: must be a table"
