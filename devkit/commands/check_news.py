"""devkit check news [--base REF] [--pr N]"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from devkit import git
from devkit.commands._common import add_config, add_format, finish, settings
from devkit.conventions.fragment_rules import Entry, check_added, check_entry, is_exempt
from devkit.conventions.settings import Settings
from devkit.violations import Report, Violation


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "--base",
        metavar="REF",
        help="the base branch: the branch must add a fragment (e.g. origin/main)",
    )
    parser.add_argument(
        "--pr",
        type=int,
        metavar="N",
        help="the pull request number every added fragment must carry",
    )
    add_format(parser)
    add_config(parser)


def scan(fragment_dir: Path) -> list[Entry]:
    entries = []
    with os.scandir(fragment_dir) as it:
        for e in sorted(it, key=lambda e: e.name):
            if e.is_symlink():
                entries.append(Entry(e.name, "symlink"))
            elif e.is_dir(follow_symlinks=False):
                entries.append(Entry(e.name, "dir"))
            elif e.is_file(follow_symlinks=False):
                entries.append(Entry(e.name, "file", Path(e.path).read_bytes()))
            else:
                entries.append(Entry(e.name, "other"))
    return entries


def news_report(
    root: Path, cfg: Settings, base: str | None = None, pr: int | None = None
) -> Report:
    """Check the fragment directory of the repository at root (raises DevkitError when it cannot)."""
    from devkit import towncrier_config

    news = towncrier_config.load(root)
    fc = news.fragments
    found: list[Violation] = []
    notes: list[str] = []
    changed: set[str] | None = None
    added: list[str] = []
    if base:
        from devkit import history

        history.resolve(
            base,
            cwd=root,
            advice=f"fetch it, e.g. `git fetch origin {base.removeprefix('origin/')}`",
        )
        prefix = f"{fc.directory}/"
        added = [
            p.removeprefix(prefix)
            for p in git.added_files(base, fc.directory, cwd=root)
            if p.startswith(prefix) and "/" not in p.removeprefix(prefix)
        ]
        changed = {
            p.removeprefix(prefix)
            for p in git.changed_files(base, cwd=root)
            if p.startswith(prefix)
        }
    entries = scan(news.fragment_dir) if news.fragment_dir.is_dir() else []
    if not news.fragment_dir.is_dir():
        notes.append(f"the fragment directory `{fc.directory}/` does not exist")
    checked = 0
    for entry in entries:
        if is_exempt(entry.name, fc, cfg.news):
            continue
        checked += 1
        # with a base, only what the branch touched gets the content rules (old fragments are history)
        content = changed is None or entry.name in changed
        found += check_entry(entry, fc, cfg.news, content=content)
    if base:
        found += check_added(added, fc, cfg.news, pr)
        notes.append(f"{len(added)} fragment(s) added since `{base}`")
    return Report("news", tuple(found), checked, tuple(notes))


def run(args: argparse.Namespace) -> int:
    if args.pr is not None and not args.base:
        from devkit.errors import DevkitError

        raise DevkitError(
            "--pr needs --base: only the fragments the branch adds must carry the number",
            "e.g. `devkit check news --base origin/main --pr 123`.",
        )
    root = git.toplevel()
    cfg = settings(args, root)
    return finish([news_report(root, cfg, args.base, args.pr)], args.format)
