"""The ruff edge: `ruff check` and `ruff format --check` over files, findings as devkit violations."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from devkit import git, history, proc
from devkit.errors import DevkitError
from devkit.violations import ERROR, Location, Report, Violation, sort_key

PY_SUFFIXES = (".py", ".pyi")
FIX_HINT = "Run `devkit lint --fix`."


class RuffMissing(Exception):
    pass


def ruff_command() -> list[str]:
    """The ruff installed with devkit: $DEVKIT_RUFF, sys.executable's sibling, `python -m ruff`, PATH."""
    override = os.environ.get("DEVKIT_RUFF")
    if override:
        return [override]
    sibling = Path(sys.executable).with_name("ruff.exe" if os.name == "nt" else "ruff")
    if sibling.is_file():
        return [str(sibling)]
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    if found:
        return [found]
    raise RuffMissing("ruff is not installed (it is a dependency of devkit: reinstall devkit)")


def local_changes(base: str, root: Path) -> list[str]:
    """Committed, staged, unstaged and untracked paths since the merge base (deleted ones dropped)."""
    mb = history.resolve(base, "HEAD", root, advice="`git fetch` the base first").merge_base
    diff = git.run("diff", "--name-only", "-z", "--no-renames", "--diff-filter=d", mb, cwd=root)
    untracked = git.run("ls-files", "-z", "--others", "--exclude-standard", cwd=root)
    if diff.returncode != 0:
        raise DevkitError(f"`git diff {mb}` failed: {diff.err.strip()}")
    paths = {p for p in (diff.out + untracked.out).split("\0") if p}
    return sorted(paths)


def changed_report(base: str, head: str, root: Path) -> Report:
    """Lint the Python files changed between the merge base of base and head."""
    return run(python_files(git.changed_files(base, head, cwd=root), root), root)


def python_files(paths: list[str], root: Path) -> list[str]:
    """The existing Python files among repository-relative paths (deleted and other files dropped)."""
    return [p for p in paths if p.endswith(PY_SUFFIXES) and (root / p).is_file()]


def _ruff(cmd: list[str], args: list[str], root: Path) -> proc.Result:
    r = proc.run(*cmd, *args, cwd=root)
    if r.returncode == 127:
        raise RuffMissing(f"ruff could not be started: {r.err.strip()}")
    return r


def _failure(what: str, r: proc.Result) -> str:
    lines = [line for line in (r.err or r.out).strip().splitlines() if line.strip()]
    detail = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
    return f"`ruff {what}` failed (exit code {r.returncode}): {detail.strip()}"


def _rel(filename: str, root: Path) -> str:
    try:
        return Path(filename).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return filename


def _json(r: proc.Result) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(r.out or "[]")
    except ValueError:
        return None
    return data if isinstance(data, list) else None


def _hint(item: dict[str, Any]) -> str:
    fix = item.get("fix")
    if isinstance(fix, dict) and fix.get("applicability") == "safe":
        return FIX_HINT
    if isinstance(fix, dict):
        return "ruff has an unsafe fix: `ruff check --fix --unsafe-fixes` (review it)."
    url = item.get("url")
    return f"See {url}" if url else ""


def to_violation(item: dict[str, Any], root: Path) -> Violation:
    loc = item.get("location") or {}
    code = str(item.get("code") or "ruff")
    return Violation(
        code=code,
        name=str(item.get("name") or code),
        message=str(item.get("message") or ""),
        location=Location(
            _rel(str(item.get("filename", "")), root),
            int(loc.get("row") or 0),
            int(loc.get("column") or 0),
        ),
        hint=_hint(item),
        severity=ERROR,
    )


def unformatted(item: dict[str, Any], root: Path) -> Violation:
    file = _rel(str(item.get("filename", "")), root)
    loc = item.get("location") or {}
    return Violation(
        "FMT",
        "unformatted",
        f"`{file}` would be reformatted by `ruff format`",
        Location(file, int(loc.get("row") or 0), int(loc.get("column") or 0)),
        f"Run `devkit lint --fix` (or `ruff format {file}`).",
        ERROR,
    )


def select(targets: list[str], root: Path, cmd: list[str]) -> list[str]:
    """What ruff would lint among targets, honouring its include/exclude settings (`--force-exclude`)."""
    r = _ruff(cmd, ["check", "--show-files", "--force-exclude", "--", *targets], root)
    if r.returncode != 0:
        raise RuntimeError(_failure("check --show-files", r))
    return [_rel(line, root) for line in r.out.splitlines() if line.strip().endswith(PY_SUFFIXES)]


def run(targets: list[str], root: Path, *, fix: bool = False, all_files: bool = False) -> Report:
    """Lint files (repository-relative) or, with all_files, the whole tree at root. Never raises for a
    ruff problem: a check that cannot run is a Report with `error` set."""
    try:
        cmd = ruff_command()
        files = select(["."] if all_files else targets, root, cmd) if (targets or all_files) else []
        if not files:
            note = "no Python files to lint" + (
                " (all excluded by ruff's settings)" if targets else ""
            )
            return Report("lint", (), 0, (note,))
        paths = ["."] if all_files else files
        notes: list[str] = []
        if fix:
            _ruff(cmd, ["check", "--fix", "--force-exclude", "--quiet", "--", *paths], root)
            _ruff(cmd, ["format", "--force-exclude", "--quiet", "--", *paths], root)
            notes.append("applied ruff's safe fixes and formatting; what is left is below")
        found = _check(cmd, paths, root) + _format(cmd, paths, root)
    except RuffMissing as exc:
        return Report("lint", (), 0, (), str(exc))
    except RuntimeError as exc:
        return Report("lint", (), 0, (), str(exc))
    return Report("lint", tuple(sorted(found, key=sort_key)), len(files), tuple(notes))


def _check(cmd: list[str], paths: list[str], root: Path) -> list[Violation]:
    r = _ruff(
        cmd, ["check", "--output-format", "json", "--force-exclude", "--no-fix", "--", *paths], root
    )
    items = _json(r)
    if r.returncode not in (0, 1) or items is None:
        raise RuntimeError(_failure("check", r))
    return [to_violation(i, root) for i in items]


def _format(cmd: list[str], paths: list[str], root: Path) -> list[Violation]:
    r = _ruff(
        cmd, ["format", "--check", "--output-format", "json", "--force-exclude", "--", *paths], root
    )
    items = _json(r)
    if items is None and "--output-format" in r.err:
        return _format_legacy(cmd, paths, root)  # ruff before `format --output-format`
    if items is None or r.returncode not in (0, 1, 2):
        raise RuntimeError(_failure("format --check", r))
    # syntax errors are reported once, by `ruff check`
    return [unformatted(i, root) for i in items if i.get("code") == "unformatted"]


def _format_legacy(cmd: list[str], paths: list[str], root: Path) -> list[Violation]:
    r = _ruff(cmd, ["format", "--check", "--force-exclude", "--", *paths], root)
    out = []
    for line in r.out.splitlines():
        if line.startswith("Would reformat: "):
            out.append(
                unformatted({"filename": str(root / line.removeprefix("Would reformat: "))}, root)
            )
    if r.returncode not in (0, 1, 2):
        raise RuntimeError(_failure("format --check", r))
    return out
