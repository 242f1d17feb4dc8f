"""A pull request as a whole: what it is (options, then GitHub's environment), and every check it
must pass, each run on its own so that one that cannot run never hides the others."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from devkit import git, github, history
from devkit.checks import branch, commit, lint, news, title
from devkit.conventions.settings import Settings
from devkit.errors import DevkitError
from devkit.violations import WARNING, Report

CHECKS = ("branch", "commit", "title", "news", "lint")


class Pull(NamedTuple):
    """What ci knows about the pull request after reading the options and the environment."""

    base: str | None
    head: str  # --head, or "" for the event's head sha when present, else HEAD
    event_head: str | None
    number: int | None
    title: str | None
    labels: tuple[str, ...]
    branch: str | None
    deepen: bool


def resolve(
    root: Path,
    opts: dict[str, Any],
    *,
    base: str | None = None,
    head: str | None = None,
    number: int | None = None,
    title: str | None = None,
    labels: tuple[str, ...] = (),
    branch: str | None = None,
    deepen: bool | None = None,
) -> Pull:
    """The pull request from explicit values, else GitHub's environment, else `[tool.devkit.ci]`."""
    gh = github.from_env()
    base = base or (f"origin/{gh.base_ref}" if gh.base_ref else None) or opts["base"]
    base = base or history.default_base(root)
    if deepen is None:
        deepen = opts["deepen"]
    if deepen is None:
        deepen = gh.in_actions
    return Pull(
        base,
        head or "",
        gh.head_sha,
        number if number is not None else gh.number,
        title if title is not None else gh.title,
        (*gh.labels, *labels),
        branch or gh.head_ref,
        bool(deepen),
    )


def news_skip_reason(pull: Pull, cfg: Settings) -> str:
    for label in pull.labels:
        if label in cfg.news.skip_labels:
            return f"skipped: the pull request has the `{label}` label"
    if pull.title is not None:
        prefix = title.title_prefix(pull.title)
        if prefix in cfg.news.skip_title_prefixes:
            return f"skipped: the title starts with `{prefix}:`"
    return ""


def _sha(ref: str, root: Path) -> str:
    return git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=root).out.strip()


def guarded(check: str, fn: Callable[[], Report]) -> Report:
    """Run one check; a failure to run becomes that check's error, never the others'."""
    try:
        return fn()
    except DevkitError as exc:
        return Report(check, error=exc.message + (f" ({exc.hint})" if exc.hint else ""))
    except Exception as exc:  # a bug in one check must not hide the others' results
        return Report(check, error=f"internal error: {type(exc).__name__}: {exc}")


def _range(pull: Pull, root: Path) -> history.Range:
    if not pull.base:
        raise DevkitError(
            "no base branch: pass --base REF (no GITHUB_BASE_REF, origin/HEAD, main or master)"
        )
    rng = history.resolve(pull.base, "HEAD", root, deepen=pull.deepen)
    # GitHub checks out a merge commit; the event's head sha is the branch itself (once fetched)
    event_head = (
        pull.event_head if pull.event_head and git.ref_exists(pull.event_head, root) else ""
    )
    head = pull.head or event_head
    if head and head != "HEAD" and _sha(head, root) == _sha("HEAD", root):
        head = "HEAD"
    if head and head != "HEAD":
        rng = history.resolve(pull.base, head, root)._replace(notes=rng.notes)
    return rng


def run_checks(
    root: Path, cfg: Settings, opts: dict[str, Any], pull: Pull, skip: set[str]
) -> list[Report]:
    enabled = [c for c in CHECKS if c in opts["checks"] and c not in skip]
    reports: list[Report] = []
    if "branch" in enabled:

        def branch_check() -> Report:
            name = pull.branch or branch.resolve_name(None, str(root))[0]
            return branch.branch_report(name, cfg)

        reports.append(guarded("branch", branch_check))
    if "title" in enabled and pull.title is not None:
        text = pull.title
        reports.append(guarded("title", lambda: title.title_report(text, pull.number, cfg)))
    ranged = [c for c in ("commit", "news", "lint") if c in enabled]
    if not ranged:
        return reports
    try:
        rng = _range(pull, root)
    except DevkitError as exc:
        message = f"cannot read the pull request's changes: {exc.message}"
        return reports + [Report(c, error=message) for c in ranged]
    if "commit" in ranged:

        def commits() -> Report:
            r = commit.range_report(f"{rng.base}..{rng.head}", cfg, str(root))
            if opts["commit_severity"] == "warning":
                r = r._replace(violations=tuple(v._replace(severity=WARNING) for v in r.violations))
            return r._replace(
                notes=(*r.notes, f"{r.checked} commit(s) in `{rng.base}..{rng.head}`")
            )

        reports.append(guarded("commit", commits))
    if "news" in ranged:
        reason = news_skip_reason(pull, cfg)
        if reason:
            reports.append(Report("news", notes=(reason,)))
        else:
            reports.append(
                guarded("news", lambda: news.news_report(root, cfg, rng.base, pull.number))
            )
    if "lint" in ranged:
        reports.append(guarded("lint", lambda: lint.changed_report(rng.base, rng.head, root)))
    if rng.notes:
        first = next(i for i, r in enumerate(reports) if r.check in ranged)
        reports[first] = reports[first]._replace(notes=(*rng.notes, *reports[first].notes))
    return reports
