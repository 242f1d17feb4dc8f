"""Contract test for devkit.towncrier_config, the one place that imports towncrier's private loader.

If a towncrier release changes `_settings` or `_builder`, this fails before users do; the dependency
is pinned to the range tested here (pyproject.toml: towncrier>=26.9,<27).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit import towncrier_config
from devkit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_towncrier_private_api_is_where_we_expect() -> None:
    import towncrier._builder as builder
    import towncrier._settings.load as load

    assert callable(load.load_config_from_options)
    assert callable(builder.FragmentsPath)
    fields = {f for f in load.Config.__dataclass_fields__}
    assert {
        "types",
        "directory",
        "filename",
        "template",
        "ignore",
        "orphan_prefix",
        "create_add_extension",
    } <= fields


def test_loads_this_repositorys_config() -> None:
    news = towncrier_config.load(ROOT)
    assert news.fragments.directory == "changes"
    assert news.fragments.types == (
        "breaking",
        "feature",
        "enhance",
        "deprecation",
        "fix",
        "doc",
        "deps",
        "misc",
        "test",
    )
    assert news.fragments.extension == "md"
    assert news.fragment_dir == ROOT / "changes"
    assert news.type_names["enhance"] == "Improvements"


def test_towncrier_toml_wins_and_template_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.towncrier]\ndirectory = 'news'\n")
    (tmp_path / "towncrier.toml").write_text(
        "[tool.towncrier]\ndirectory = 'changelog.d'\nfilename = 'NEWS.rst'\ntemplate = 'changelog.d/tpl.rst'\n"
        "ignore = ['keep.txt']\n[[tool.towncrier.type]]\ndirectory = 'bugfix'\nname = 'Bugs'\nshowcontent = true\n"
    )
    (tmp_path / "changelog.d").mkdir()
    (tmp_path / "changelog.d" / "tpl.rst").write_text("{{ versiondata.version }}\n")
    news = towncrier_config.load(tmp_path)
    assert news.fragments.directory == "changelog.d"
    assert news.fragments.types == ("bugfix",)
    assert news.fragments.extension == "rst"
    assert set(news.fragments.ignore) == {"keep.txt", "tpl.rst"}


def test_default_types_when_none_configured(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.towncrier]\ndirectory = 'changes'\n")
    assert towncrier_config.load(tmp_path).fragments.types == (
        "feature",
        "bugfix",
        "doc",
        "removal",
        "misc",
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[project]\nname='x'\n", "tool.towncrier"),
        ("[tool.towncrier]\ndirectory = 3\n", "tool.towncrier"),
    ],
)
def test_bad_or_missing_config_is_a_config_error(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        towncrier_config.load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}/pyproject.toml: {key}")
