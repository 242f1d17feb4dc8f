"""What a GitHub Actions run tells about its pull request (environment and the event payload)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from typing import Any, NamedTuple

from devkit import files, proc
from devkit.errors import DevkitError


class PullRequest(NamedTuple):
    """The pull request a run is about; every field is optional outside a `pull_request` event."""

    number: int | None = None
    title: str | None = None
    labels: tuple[str, ...] = ()
    base_ref: str | None = None  # branch name, e.g. "main" (GITHUB_BASE_REF)
    head_ref: str | None = None  # branch name of the PR (GITHUB_HEAD_REF)
    head_sha: str | None = None  # the PR's tip (HEAD is GitHub's merge commit by default)
    in_actions: bool = False
    trigger_label: str | None = None  # the label added or removed, on a labeled/unlabeled event
    fork: bool = False  # the head branch is in another repository than the base


def _event(path: str) -> dict[str, Any]:
    data = files.read_json(path, "GITHUB_EVENT_PATH")
    if not isinstance(data, dict):
        raise DevkitError(f"GITHUB_EVENT_PATH {path} does not hold a JSON object")
    return data


def _number(value: object, path: str) -> int | None:
    """The event's pull request number: absent, or a positive integer."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise DevkitError(
            f"GITHUB_EVENT_PATH {path}: the pull request number {value!r} is not a positive integer",
            "GitHub writes a positive number there: is it the run's own event file?",
        )
    return value


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def from_env(env: Mapping[str, str] | None = None) -> PullRequest:
    """The pull request described by GitHub Actions' variables; empty outside Actions."""
    env = os.environ if env is None else env
    event_path = env.get("GITHUB_EVENT_PATH")
    pr: dict[str, Any] = {}
    number: int | None = None
    trigger: str | None = None
    if event_path:
        event = _event(event_path)
        label = event.get("label")
        if event.get("action") in ("labeled", "unlabeled") and isinstance(label, dict):
            trigger = _str(label.get("name"))
        raw = event.get("pull_request")
        pr = raw if isinstance(raw, dict) else {}
        number = _number(pr.get("number", event.get("number")), event_path)
    labels = tuple(
        label["name"]
        for label in pr.get("labels") or ()
        if isinstance(label, dict) and isinstance(label.get("name"), str)
    )
    base = pr.get("base") if isinstance(pr.get("base"), dict) else {}
    head = pr.get("head") if isinstance(pr.get("head"), dict) else {}
    repos = [_repo_name(side) for side in (head, base)]
    return PullRequest(
        number=number,
        title=_str(pr.get("title")),
        labels=labels,
        base_ref=_str(env.get("GITHUB_BASE_REF")) or _str(base.get("ref")),
        head_ref=_str(env.get("GITHUB_HEAD_REF")) or _str(head.get("ref")),
        head_sha=_str(head.get("sha")),
        in_actions=env.get("GITHUB_ACTIONS") == "true",
        trigger_label=trigger,
        fork=bool(repos[0] and repos[1] and repos[0] != repos[1]),
    )


def _repo_name(side: dict[str, Any]) -> str | None:
    """`owner/name` of a pull request's head or base (`repo.full_name` in the event)."""
    repo = side.get("repo")
    return _str(repo.get("full_name")) if isinstance(repo, dict) else None


GH_FIELDS = "number,title,labels,baseRefName,headRefName,isCrossRepository,state"


def from_gh(branch: str, cwd: str | os.PathLike[str]) -> PullRequest | None:
    """The open pull request of `branch`, as the GitHub CLI (`gh pr view`) tells it; None when
    there is none, or gh is not installed or cannot answer (offline, not logged in)."""
    if not shutil.which("gh"):
        return None
    import subprocess  # its TimeoutExpired: gh is asked only here, from the pre-push check

    env = {**os.environ, "GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1"}
    try:
        r = proc.run("gh", "pr", "view", branch, "--json", GH_FIELDS, cwd=cwd, env=env, timeout=15)
    except subprocess.TimeoutExpired:
        return None
    try:
        data = json.loads(r.out) if r.returncode == 0 else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("state") != "OPEN":
        return None
    number = data.get("number")
    return PullRequest(
        number=number if isinstance(number, int) and number > 0 else None,
        title=_str(data.get("title")),
        labels=tuple(
            label["name"]
            for label in data.get("labels") or ()
            if isinstance(label, dict) and isinstance(label.get("name"), str)
        ),
        base_ref=_str(data.get("baseRefName")),
        head_ref=_str(data.get("headRefName")) or branch,
        fork=data.get("isCrossRepository") is True,
    )
