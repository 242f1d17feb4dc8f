"""devkit ci: every check a pull request must pass, in one report (each check runs on its own)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from devkit import git, github, history, lint, sections
from devkit.commands._common import add_config, add_format, finish, settings
from devkit.conventions.settings import Settings
from devkit.errors import DevkitError
from devkit.violations import WARNING, Report

CHECKS = ("branch", "commit", "title", "news", "lint")
SCHEMA = {
    "base": "str",
    "checks": "strs",
    "deepen": "bool",
    "commit_severity": "choice:error|warning",
}
# Backend.AI squash-merges: commits inside a pull request are free-form, the title is what lands
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {"backend.ai": {"commit_severity": "warning"}}
_SCOPE_RE = re.compile(r"\([^)]+\)$")


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument(
        "--base",
        metavar="REF",
        help="the base of the pull request (default: "
        "origin/$GITHUB_BASE_REF, [tool.devkit.ci].base, else origin's default branch)",
    )
    parser.add_argument(
        "--head",
        metavar="REF",
        help="the pull request's tip (default: the event's head sha when present, else HEAD)",
    )
    parser.add_argument(
        "--pr",
        type=int,
        metavar="N",
        help="the pull request number (default: from GITHUB_EVENT_PATH)",
    )
    parser.add_argument("--title", help="the pull request title (default: from GITHUB_EVENT_PATH)")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="LABEL",
        dest="labels",
        help="a label of the pull request (repeatable; added to the event's)",
    )
    parser.add_argument(
        "--branch",
        metavar="NAME",
        help="the branch name (default: GITHUB_HEAD_REF, else the current branch)",
    )
    parser.add_argument(
        "--deepen",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fetch the base and deepen a shallow clone when the range is incomplete "
        "(default: [tool.devkit.ci].deepen, else on in GitHub Actions)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=CHECKS,
        metavar="CHECK",
        help=f"do not run a check (repeatable): {', '.join(CHECKS)}",
    )
    add_format(parser)
    add_config(parser)


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


def title_prefix(title: str) -> str:
    """Backend.AI's pr-prefix rule: the text before the first `:`, one trailing `(...)` removed."""
    return _SCOPE_RE.sub("", title.split(":", 1)[0].strip())


def news_skip_reason(pull: Pull, cfg: Settings) -> str:
    for label in pull.labels:
        if label in cfg.news.skip_labels:
            return f"skipped: the pull request has the `{label}` label"
    if pull.title is not None and title_prefix(pull.title) in cfg.news.skip_title_prefixes:
        return f"skipped: the title starts with `{title_prefix(pull.title)}:`"
    return ""


def title_report(title: str, number: int | None, cfg: Settings) -> Report:
    """The title as it will land: with the preset's squash merge, `<title> (#N)` is the commit header."""
    from devkit.conventions.commit_rules import check_message

    header = title.strip()
    if cfg.commit.squash_suffix and number is not None:
        header = f"{header} (#{number})"
    found = [
        v._replace(message=f"pull request title {title!r}: {v.message}", context=header)
        for v in check_message([header], cfg.commit, parents=1)
    ]
    return Report("title", tuple(found), 1)


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


def resolve_pull(args: argparse.Namespace, opts: dict[str, Any], root: Path) -> Pull:
    gh = github.from_env()
    base = args.base or (f"origin/{gh.base_ref}" if gh.base_ref else None) or opts["base"]
    base = base or history.default_base(root)
    deepen = args.deepen if args.deepen is not None else opts["deepen"]
    if deepen is None:
        deepen = gh.in_actions
    return Pull(
        base,
        args.head or "",
        gh.head_sha,
        args.pr if args.pr is not None else gh.number,
        args.title if args.title is not None else gh.title,
        (*gh.labels, *args.labels),
        args.branch or gh.head_ref,
        bool(deepen),
    )


def run_checks(
    root: Path, cfg: Settings, opts: dict[str, Any], pull: Pull, skip: set[str]
) -> list[Report]:
    from devkit.commands import check_branch, check_commit, check_news

    enabled = [c for c in CHECKS if c in opts["checks"] and c not in skip]
    reports: list[Report] = []
    if "branch" in enabled:

        def branch() -> Report:
            name = pull.branch or check_branch.resolve_name(None)[0]
            return check_branch.branch_report(name, cfg)

        reports.append(guarded("branch", branch))
    if "title" in enabled and pull.title is not None:
        title = pull.title
        reports.append(guarded("title", lambda: title_report(title, pull.number, cfg)))
    ranged = [c for c in ("commit", "news", "lint") if c in enabled]
    if not ranged:
        return reports
    try:
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
    except DevkitError as exc:
        message = f"cannot read the pull request's changes: {exc.message}"
        return reports + [Report(c, error=message) for c in ranged]
    fetched = rng.notes
    if "commit" in ranged:

        def commits() -> Report:
            r = check_commit.check_range(f"{rng.base}..{rng.head}", cfg, str(root))
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
                guarded("news", lambda: check_news.news_report(root, cfg, rng.base, pull.number))
            )
    if "lint" in ranged:

        def lint_changed() -> Report:
            files = lint.python_files(git.changed_files(rng.base, rng.head, cwd=root), root)
            return lint.run(files, root)

        reports.append(guarded("lint", lint_changed))
    if fetched:
        first = next(i for i, r in enumerate(reports) if r.check in ranged)
        reports[first] = reports[first]._replace(notes=(*fetched, *reports[first].notes))
    return reports


def run(args: argparse.Namespace) -> int:
    root = git.toplevel()
    cfg = settings(args, root)
    defaults: dict[str, Any] = {
        "base": None,
        "checks": CHECKS,
        "deepen": None,
        "commit_severity": "error",
    }
    defaults.update(PRESET_DEFAULTS.get(cfg.preset, {}))
    opts = sections.read(cfg, "ci", SCHEMA, defaults)
    unknown = [c for c in opts["checks"] if c not in CHECKS]
    if unknown:
        from devkit.errors import ConfigError

        raise ConfigError(
            cfg.source,
            "tool.devkit.ci.checks",
            f"unknown check {unknown[0]!r}",
            f"Use some of: {', '.join(CHECKS)}.",
        )
    pull = resolve_pull(args, opts, root)
    return finish(run_checks(root, cfg, opts, pull, set(args.skip)), args.format)
