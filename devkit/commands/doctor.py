"""devkit doctor: is this clone set up so that a contributor's first commit is checked?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from devkit import __version__, config, git, hooks, ruff, towncrier_config
from devkit.errors import DevkitError


class Finding(NamedTuple):
    ok: bool
    what: str
    hint: str = ""


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "--config",
        metavar="PYPROJECT",
        help="the pyproject.toml to read [tool.devkit] from (default: the nearest one)",
    )


def findings(args: argparse.Namespace) -> list[Finding]:
    root = git.toplevel()
    out = [Finding(True, f"devkit {__version__} ({sys.executable})")]
    pin_setting = None
    try:
        cfg = config.load(root, args.config)
        where = cfg.source or "no [tool.devkit]: the defaults"
        out.append(Finding(True, f"config: {where}, preset {cfg.preset}"))
        pin_setting = config.section(cfg, "lint")["ruff"]
    except DevkitError as exc:
        out.append(Finding(False, f"config: {exc.message}", exc.hint))
    try:
        news = towncrier_config.load(root)
        out.append(
            Finding(True, f"news fragments: {news.fragments.directory}/ ({news.config_file})")
        )
    except DevkitError as exc:
        out.append(Finding(False, f"news fragments: {exc.message}", exc.hint))
    out += pre_commit_config(root)
    out += git_hooks(root)
    out += project_ruff(root, pin_setting)
    return out


def pre_commit_config(root: Path) -> list[Finding]:
    """The config names devkit's hooks, and pre-commit can install them as written."""
    path = root / hooks.CONFIG
    if not path.is_file():
        return [Finding(False, f"{hooks.CONFIG}: missing", "Run `devkit init`.")]
    text = path.read_text(encoding="utf-8", errors="replace")
    ids = [i for i in ("devkit-branch", "devkit-commit-msg", "devkit-news") if i not in text]
    if ids:
        return [
            Finding(
                False,
                f"{hooks.CONFIG}: no {', '.join(ids)} hook",
                "Run `devkit init` (it adds them).",
            )
        ]
    ok, what, hint = hooks.devkit_source(text)
    return [Finding(ok, f"{hooks.CONFIG}: {what}", hint)]


def git_hooks(root: Path) -> list[Finding]:
    """Each git hook devkit needs is pre-commit's, and runs everything it holds."""
    out = []
    for h in hooks.states(root):
        if not h.installed:
            hint = f"Next: {hooks.NEXT_STEP}."
            out.append(Finding(False, f"git hook {h.hook_type}: {h.detail}", hint))
        elif not h.problems:
            out.append(Finding(True, f"git hook {h.hook_type}: pre-commit's"))
        for what, hint in h.problems:
            out.append(Finding(False, f"git hook {h.hook_type}: {what}", hint))
    return out


def project_ruff(root: Path, setting: str | None) -> list[Finding]:
    """The ruff `devkit lint` runs, and whether the pre-commit config runs the same one."""
    pin = ruff.find_pin(root, setting)
    if pin is None:
        return [Finding(True, "ruff: the project pins none; devkit's own runs")]
    cached = (ruff.cache_dir() / "ruff" / pin.version / "bin" / "ruff").is_file()
    state = "in the cache" if cached else "installed from PyPI on the first `devkit lint`"
    out = [Finding(True, f"ruff {pin.version}: pinned by {pin.source}; {state}")]
    drift = ruff.drift(root, setting)
    if drift:
        out.append(
            Finding(
                False,
                f"{hooks.CONFIG}: ruff-pre-commit runs ruff {drift.pre_commit}, "
                f"but the project pins {drift.gate.version} ({drift.gate.source})",
                f"Run `devkit lint --sync-pre-commit` (it sets the rev to v{drift.gate.version}).",
            )
        )
    return out


def run(args: argparse.Namespace) -> int:
    found = findings(args)
    for f in found:
        print(f"{'ok  ' if f.ok else 'FAIL'}  {f.what}")
        if f.hint:
            print(f"      hint: {f.hint}")
    bad = sum(not f.ok for f in found)
    print("devkit doctor: all good" if not bad else f"devkit doctor: {bad} problem(s)")
    return 1 if bad else 0
