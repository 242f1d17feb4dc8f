"""devkit doctor: is this clone set up so that a contributor's first commit is checked?"""

from __future__ import annotations

import argparse
import sys
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
    try:
        cfg = config.load(root, args.config)
        where = cfg.source or "no [tool.devkit]: the defaults"
        out.append(Finding(True, f"config: {where}, preset {cfg.preset}"))
    except DevkitError as exc:
        out.append(Finding(False, f"config: {exc.message}", exc.hint))
    try:
        news = towncrier_config.load(root)
        out.append(
            Finding(True, f"news fragments: {news.fragments.directory}/ ({news.config_file})")
        )
    except DevkitError as exc:
        out.append(Finding(False, f"news fragments: {exc.message}", exc.hint))
    pre_commit = root / hooks.CONFIG
    if not pre_commit.is_file():
        out.append(Finding(False, f"{hooks.CONFIG}: missing", "Run `devkit init`."))
    else:
        text = pre_commit.read_text(encoding="utf-8", errors="replace")
        ids = [i for i in ("devkit-branch", "devkit-commit-msg", "devkit-news") if i not in text]
        out.append(
            Finding(
                not ids,
                f"{hooks.CONFIG}: " + (f"no {', '.join(ids)} hook" if ids else "devkit's hooks"),
                "Run `devkit init` (it adds them)." if ids else "",
            )
        )
    for h in hooks.states(root):
        out.append(
            Finding(
                h.installed,
                f"git hook {h.hook_type}: " + ("pre-commit's" if h.installed else h.detail),
                "" if h.installed else "Run `devkit init --install-hooks`.",
            )
        )
    pin = ruff.find_pin(root)
    if pin is None:
        out.append(Finding(True, "ruff: the project pins none; devkit's own runs"))
    else:
        cached = (ruff.cache_dir() / "ruff" / pin.version / "bin" / "ruff").is_file()
        state = "in the cache" if cached else "installed from PyPI on the first `devkit lint`"
        out.append(Finding(True, f"ruff {pin.version}: pinned by {pin.source}; {state}"))
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
