"""News fragments: the towncrier directory's names and contents, and what a branch adds."""

from __future__ import annotations

import os
from pathlib import Path

from devkit import git, history, towncrier_config
from devkit.conventions.fragment_rules import (
    Entry,
    check_added,
    check_duplicates,
    check_entry,
    is_exempt,
)
from devkit.conventions.settings import Settings
from devkit.conventions.verdict import with_severities
from devkit.errors import DevkitError
from devkit.violations import Report, Violation

ASSIGN_WORKFLOW = ".github/workflows/devkit-news-assign.yml"


def numbered_by_workflow(root: Path, cfg: Settings) -> bool:
    """Whether placeholders get their number from the news-assign workflow ([news] assign_workflow)."""
    setting = cfg.news.assign_workflow
    return (root / ASSIGN_WORKFLOW).is_file() if setting == "auto" else bool(setting)


def scan(fragment_dir: Path) -> list[Entry]:
    """What the fragment directory holds; a FIFO or device is never opened (reading one can hang)."""
    entries = []
    try:
        with os.scandir(fragment_dir) as it:
            for e in sorted(it, key=lambda e: e.name):
                if e.is_symlink():
                    entries.append(Entry(e.name, "symlink"))
                elif e.is_dir(follow_symlinks=False):
                    entries.append(Entry(e.name, "dir"))
                elif e.is_file(follow_symlinks=False):
                    entries.append(Entry(e.name, "file", _read(Path(e.path))))
                else:
                    entries.append(Entry(e.name, "other"))
    except PermissionError as exc:
        raise DevkitError(
            f"cannot read the fragment directory {fragment_dir}: {exc.strerror}",
            "Make it readable (e.g. `chmod u+rx`).",
        ) from None
    return entries


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DevkitError(
            f"cannot read the fragment {path}: {exc.strerror}", "Make it readable (`chmod u+r`)."
        ) from None


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
    exists = towncrier_config.fragment_dir_exists(news)
    entries = scan(news.fragment_dir) if exists else []
    if not exists:
        notes.append(f"the fragment directory `{fc.directory}/` does not exist")
    assigned = numbered_by_workflow(root, cfg)
    checked = 0
    for entry in entries:
        if is_exempt(entry.name, fc, cfg.news):
            continue
        checked += 1
        # with a base, only what the branch touched gets the content rules (old fragments are history)
        content = changed is None or entry.name in changed
        found += check_entry(entry, fc, cfg.news, content=content, assigned=assigned)
    found += check_duplicates(
        [e.name for e in entries if e.kind == "file" and not is_exempt(e.name, fc, cfg.news)], fc
    )
    if base:
        found += check_added(added, fc, cfg.news, pr, assigned)
        notes.append(f"{len(added)} fragment(s) added since `{base}`")
    return Report("news", with_severities(found, cfg.rules), checked, tuple(notes))
