"""News fragments: the towncrier directory's names and contents, and what a branch adds."""

from __future__ import annotations

import os
from pathlib import Path

from devkit import git, history, towncrier_config
from devkit.conventions.fragment_rules import (
    NO_FACTS,
    Entry,
    FragmentConfig,
    FragmentName,
    Numbering,
    PullFacts,
    check_added,
    check_duplicates,
    check_entry,
    is_exempt,
    parse_name,
)
from devkit.conventions.settings import Settings
from devkit.conventions.verdict import with_severities
from devkit.errors import DevkitError
from devkit.violations import Report, Violation

ASSIGN_WORKFLOW = ".github/workflows/devkit-news-assign.yml"
DEVKIT_NUMBERING = Numbering("devkit's news-assign workflow")
# Backend.AI's: timeline-check.yml calls assign-pr-number.yml, which runs its script; the script of
# main (scripts/assign-pr-number.py) also renumbers a fragment added to main with another number
BACKENDAI_WORKFLOW = ".github/workflows/timeline-check.yml"
BACKENDAI_ASSIGN = ".github/workflows/assign-pr-number.yml"
BACKENDAI_RENUMBERING = "scripts/assign-pr-number.py"


def numbering(root: Path, cfg: Settings) -> Numbering | None:
    """The workflow that numbers placeholder fragments ([news] assign_workflow): devkit's
    news-assign workflow, Backend.AI's timeline-check.yml, or none."""
    setting = cfg.news.assign_workflow
    if setting is False:
        return None
    if (root / ASSIGN_WORKFLOW).is_file():
        return DEVKIT_NUMBERING
    if (root / BACKENDAI_ASSIGN).is_file() and _calls(root / BACKENDAI_WORKFLOW, BACKENDAI_ASSIGN):
        renumbers = ("main",) if (root / BACKENDAI_RENUMBERING).is_file() else ()
        return Numbering("Backend.AI's timeline-check.yml (its assign-pr-number job)", renumbers)
    return DEVKIT_NUMBERING if setting is True else None


def _calls(workflow: Path, reusable: str) -> bool:
    """Whether a workflow file calls the reusable workflow `reusable` (`uses: ./<reusable>`)."""
    try:
        return f"./{reusable}" in workflow.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


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
    root: Path,
    cfg: Settings,
    base: str | None = None,
    pr: int | None = None,
    *,
    staged: bool = False,
    pull: PullFacts = NO_FACTS,
) -> Report:
    """Check the fragment directory of the repository at root (raises DevkitError when it cannot).
    With a base, what the branch adds since its merge base with it (and, `staged`, what the index
    adds); `pull`: the pull request's base branch, fork and backport."""
    news = towncrier_config.load(root)
    fc = news.fragments
    found: list[Violation] = []
    notes: list[str] = []
    changed: set[str] | None = None
    added: list[str] = []
    if base:
        rng = history.resolve(
            base,
            cwd=root,
            advice=f"fetch it, e.g. `git fetch origin {base.removeprefix('origin/')}`",
        )
        since = rng.merge_base if staged else base
        prefix = f"{fc.directory}/"
        added = [
            p.removeprefix(prefix)
            for p in git.added_files(since, fc.directory, cwd=root, staged=staged)
            if p.startswith(prefix) and "/" not in p.removeprefix(prefix)
        ]
        changed = {
            p.removeprefix(prefix)
            for p in git.changed_files(since, cwd=root, staged=staged)
            if p.startswith(prefix)
        }
    exists = towncrier_config.fragment_dir_exists(news)
    entries = scan(news.fragment_dir) if exists else []
    if not exists:
        notes.append(f"the fragment directory `{fc.directory}/` does not exist")
    workflow = numbering(root, cfg)
    placeholders_numbered = workflow if workflow and not pull.fork else None
    checked = 0
    for entry in entries:
        if is_exempt(entry.name, fc, cfg.news):
            continue
        checked += 1
        # with a base, only what the branch touched gets the content rules (old fragments are history)
        content = changed is None or entry.name in changed
        found += check_entry(entry, fc, cfg.news, content=content, numbering=placeholders_numbered)
    found += check_duplicates(
        [e.name for e in entries if e.kind == "file" and not is_exempt(e.name, fc, cfg.news)], fc
    )
    if base:
        on_branch = check_added(added, fc, cfg.news, pr, workflow, pull)
        # a placeholder nothing will number is one error (NF008, with the rename), not two
        misnumbered = {v.location.file for v in on_branch if v.code == "NF008"}
        found = [v for v in found if not (v.code == "NF003" and v.location.file in misnumbered)]
        found += on_branch
        notes.append(f"{len(added)} fragment(s) added since `{base}`")
        kept = [n for n in added if _number(n, fc) in pull.originals]
        if kept:
            names = ", ".join(f"`{fc.directory}/{n}`" for n in kept)
            verb = "keeps" if len(kept) == 1 else "keep"
            notes.append(f"a backport of #{', #'.join(pull.originals)}: {names} {verb} its number")
    return Report("news", with_severities(found, cfg.rules), checked, tuple(notes))


def _number(name: str, fc: FragmentConfig) -> str:
    parsed = parse_name(name, fc)
    return parsed.number if isinstance(parsed, FragmentName) else ""
