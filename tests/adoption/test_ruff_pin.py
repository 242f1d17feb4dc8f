"""One source for ruff (issue 18, item 5), on both of Backend.AI's lines: the version its gate pins
(main: pants.toml's `[ruff] version`; 23.09: `[ruff] install_from_resolve` and tools/ruff.lock) is
the ruff `devkit lint` runs; a pre-commit config that runs another is flagged, and synced by one
command."""

from __future__ import annotations

import json
import re

from devkit import ruff
from tests.adoption.conftest import MAIN_RUFF, RUFF_2309, PackageIndex
from tests.gitrepo import Repo

LOCK_SOURCE = "tools/ruff.lock, the lock of pants.toml's [ruff] install_from_resolve"
# a config as devkit init wrote it before: the ruff-pre-commit rev copied from pants.toml
OLD_CONFIG = f"""\
repos:
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: v{MAIN_RUFF}
    hooks:
      - id: ruff-check
        args: [--fix]
      - id: ruff-format
"""


def lint_note(repo: Repo, index: PackageIndex, cache: str) -> tuple[int, dict]:
    repo.write("tools/devkit_probe.py", "import os\n")
    p = repo.devkit(
        "lint", "tools/devkit_probe.py", "--format", "json",
        env={**index.env(), "DEVKIT_CACHE_DIR": cache},
    )  # fmt: skip
    (check,) = json.loads(p.stdout)["checks"]
    return p.returncode, check


def test_main_pins_ruff_in_pants_toml_and_a_bump_is_followed_or_flagged(
    bai_main: Repo, package_index: PackageIndex, shared_caches: dict[str, str]
) -> None:
    root = bai_main.path
    assert ruff.find_pin(root) == (MAIN_RUFF, "[ruff] version in pants.toml")
    rc, check = lint_note(bai_main, package_index, shared_caches["DEVKIT_CACHE_DIR"])
    assert check["notes"][0] == f"ruff {MAIN_RUFF} (pinned by [ruff] version in pants.toml)"
    assert (rc, [v["code"] for v in check["violations"]]) == (1, ["F401"])
    # ruff 0.14's check output has no rule names: they come from `ruff rule --all` (issue 18)
    assert [v["name"] for v in check["violations"]] == ["unused-import"]

    bai_main.write(".pre-commit-config.yaml", OLD_CONFIG)
    assert ruff.drift(root) is None
    pants = (root / "pants.toml").read_text()
    bumped = re.sub(r'(\[ruff\]\nversion = )"[^"]+"', r'\1"0.15.0"', pants, count=1)
    assert bumped != pants
    (root / "pants.toml").write_text(bumped)
    # devkit lint follows the gate at once (the bumped version: not in the offline wheelhouse)
    assert ruff.find_pin(root) == ("0.15.0", "[ruff] version in pants.toml")
    p = bai_main.devkit("doctor")
    assert (
        "FAIL  .pre-commit-config.yaml: ruff-pre-commit runs ruff 0.14.0, "
        "but the project pins 0.15.0 ([ruff] version in pants.toml)"
    ) in p.stdout.splitlines()
    p = bai_main.devkit("lint", "--sync-pre-commit")
    assert p.returncode == 0, p.stderr
    assert (root / ".pre-commit-config.yaml").read_text() == OLD_CONFIG.replace(
        f"v{MAIN_RUFF}", "v0.15.0"
    )
    assert "ruff-pre-commit runs" not in bai_main.devkit("doctor").stdout


def test_2309_pins_ruff_through_its_lock(
    bai_2309: Repo, package_index: PackageIndex, shared_caches: dict[str, str]
) -> None:
    assert ruff.find_pin(bai_2309.path) == (RUFF_2309, LOCK_SOURCE)
    p = bai_2309.devkit("doctor")
    assert f"ok    ruff {RUFF_2309}: pinned by {LOCK_SOURCE};" in p.stdout
    rc, check = lint_note(bai_2309, package_index, shared_caches["DEVKIT_CACHE_DIR"])
    assert check["notes"][0] == f"ruff {RUFF_2309} (pinned by {LOCK_SOURCE})"
    assert (rc, [v["code"] for v in check["violations"]]) == (1, ["F401"])
    assert [v["name"] for v in check["violations"]] == ["unused-import"]
