"""A pull request's title, checked as the commit header it becomes when squash-merged."""

from __future__ import annotations

import re

from devkit.conventions.commit_rules import check_message
from devkit.conventions.settings import Settings
from devkit.violations import Report

_SCOPE_RE = re.compile(r"\([^)]+\)$")


def title_prefix(title: str) -> str:
    """Backend.AI's pr-prefix rule: the text before the first `:`, one trailing `(...)` removed."""
    return _SCOPE_RE.sub("", title.split(":", 1)[0].strip())


def title_report(title: str, number: int | None, cfg: Settings) -> Report:
    """The title as it will land: with the preset's squash merge, `<title> (#N)` is the commit header."""
    header = title.strip()
    if cfg.commit.squash_suffix and number is not None:
        header = f"{header} (#{number})"
    found = [
        v._replace(message=f"pull request title {title!r}: {v.message}", context=header)
        for v in check_message([header], cfg.commit, parents=1)
    ]
    return Report("title", tuple(found), 1)
