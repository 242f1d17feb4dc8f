"""News fragments: the towncrier directory's names and contents, and what a branch adds."""

from __future__ import annotations

import os
from pathlib import Path

from devkit import git, history, towncrier_config
from devkit.conventions.fragment_rules import Entry, check_added, check_entry, is_exempt
from devkit.conventions.settings import Settings
from devkit.violations import Report, Violation


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
    news = towncrier_config.load(root)
    fc = news.fragments
    found: list[Violation] = []
    notes: list[str] = []
    changed: set[str] | None = None
    added: list[str] = []
    if base:
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
