"""A pull request as a whole: what it is (options, then GitHub's environment), and every check it
must pass, each run on its own so that one that cannot run never hides the others."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from devkit import config, git, github, history
from devkit.checks import branch, commit, lint, news, title
from devkit.conventions.fragment_rules import PullFacts
from devkit.conventions.settings import MATCH_LIMIT, Settings
from devkit.errors import DevkitError
from devkit.violations import ERROR, WARNING, Report

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
    trigger_label: str | None = None
    fork: bool = False  # the head is in another repository (GitHub's event says so)


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
        gh.trigger_label,
        gh.fork,
    )


def base_branch(base: str | None, root: Path) -> str:
    """The base's branch name: `main` for `origin/main` (a remote-tracking ref), else the ref."""
    if not base:
        return ""
    split = history.remote_branch(base, root)
    return split[1] if split else base.removeprefix("refs/heads/")


def facts(pull: Pull, cfg: Settings, root: Path) -> PullFacts:
    """What the fragment rules need besides the number: the base branch, a fork, and for a
    backport ([news] backport_branch, backport_bases) the numbers its fragments keep."""
    base = base_branch(pull.base, root)
    return PullFacts(base, pull.fork, backported(cfg, base, pull.branch or "", pull.title or ""))


def backported(cfg: Settings, base: str, branch: str, title: str) -> tuple[str, ...]:
    """The numbers of the pull request a backport backports: a pull request to a backport base whose
    branch names it (`backport/1234-to-23.09`) or whose title ends with its squash suffix
    (`fix: x (#1234)`); () for any other pull request."""
    news = cfg.news
    if not any(_fullmatch(p, base) for p in news.backport_bases):
        return ()
    found = []
    m = re.fullmatch(news.backport_branch, branch[:MATCH_LIMIT]) if news.backport_branch else None
    if m and m.group("number"):
        found.append(str(int(m.group("number"))))
    suffix = re.search(r" \(#(\d+)\)$", title.strip())
    if suffix:
        found.append(str(int(suffix.group(1))))
    return tuple(dict.fromkeys(found))


def _fullmatch(pattern: str, text: str) -> bool:
    return len(text) <= MATCH_LIMIT and re.fullmatch(pattern, text) is not None


def news_skip_reason(pull: Pull, cfg: Settings) -> str:
    for label in pull.labels:
        if any(fnmatch.fnmatchcase(label, p) for p in cfg.news.skip_labels):
            return f"skipped: the pull request has the `{label}` label"
    trigger = pull.trigger_label
    if trigger and any(fnmatch.fnmatchcase(trigger, p) for p in cfg.news.skip_trigger_labels):
        return f"skipped: this run was started by the `{trigger}` label"
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
            return r._replace(
                notes=(*r.notes, f"{r.checked} commit(s) in `{rng.base}..{rng.head}`")
            )

        reports.append(guarded("commit", commits))
    if "news" in ranged:
        reason = news_skip_reason(pull, cfg)
        if reason:
            reports.append(Report("news", notes=(reason,)))
        else:
            about = facts(pull, cfg, root)
            reports.append(
                guarded(
                    "news", lambda: news.news_report(root, cfg, rng.base, pull.number, pull=about)
                )
            )
    if "lint" in ranged:
        pin = config.section(cfg, "lint")["ruff"]
        reports.append(guarded("lint", lambda: lint.changed_report(rng.base, rng.head, root, pin)))
    if rng.notes:
        first = next(i for i, r in enumerate(reports) if r.check in ranged)
        reports[first] = reports[first]._replace(notes=(*rng.notes, *reports[first].notes))
    return reports


NO_PULL_REQUEST = (
    "no pull request for `{branch}` yet (or `gh` cannot tell): a missing fragment only warns "
    "here; the pull request's check wants one unless it gets a skip label ({labels})"
)


def pushed(root: Path, cfg: Settings, base: str | None = None) -> Report:
    """The pre-push hook's fragment check: what `devkit ci` will check in the pull request of the
    branch being pushed, and only that. The pull request (number, title, labels, base, fork) comes
    from `gh pr view` when gh is installed; before one exists, nothing that depends on it fails."""
    name = git.current_branch(root)
    gh = github.from_gh(name, root) if name else None
    opts = config.section(cfg, "ci")
    base = base or (f"origin/{gh.base_ref}" if gh and gh.base_ref else None) or opts["base"]
    base = base or history.default_base(root)
    if not name or not base or base_branch(base, root) == name:
        why = "a detached HEAD" if not name else f"`{name}`, no pull request's branch"
        report = news.news_report(root, cfg)
        return report._replace(notes=(*report.notes, f"pushing {why}: fragments checked alone"))
    pull = Pull(base, "", None, gh.number if gh else None, gh.title if gh else None,
                gh.labels if gh else (), name, False, None, gh.fork if gh else False)  # fmt: skip
    reason = news_skip_reason(pull, cfg)
    if reason:
        return Report("news", notes=(reason,))
    try:
        report = news.news_report(root, cfg, base, pull.number, pull=facts(pull, cfg, root))
    except DevkitError as exc:  # no base here (a fresh clone, offline): what can be checked alone
        report = news.news_report(root, cfg)
        note = f"cannot compare with `{base}` ({exc.message}): fragments checked alone"
        return report._replace(notes=(*report.notes, note))
    if gh is not None:
        return report
    missing = [v for v in report.violations if v.code == "NF011" and v.severity == ERROR]
    if not missing:
        return report
    labels = ", ".join(f"`{p}`" for p in cfg.news.skip_labels) or "none is configured"
    note = NO_PULL_REQUEST.format(branch=name, labels=labels)
    violations = tuple(
        v._replace(severity=WARNING) if v in missing else v for v in report.violations
    )
    return report._replace(violations=violations, notes=(*report.notes, note))
