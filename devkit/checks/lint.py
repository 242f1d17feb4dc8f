"""The ruff edge: `ruff check` and `ruff format --check` over files, findings as devkit violations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devkit import git, history, proc, ruff
from devkit.errors import DevkitError
from devkit.ruff import RuffMissing
from devkit.violations import ERROR, Location, Report, Violation, sort_key

PY_SUFFIXES = (".py", ".pyi")
FIX_HINT = "Run `devkit lint --fix`."


def local_changes(base: str, root: Path) -> list[str]:
    """Committed, staged, unstaged and untracked paths since the merge base (deleted ones dropped)."""
    mb = history.resolve(base, "HEAD", root, advice="`git fetch` the base first").merge_base
    diff = git.run("diff", "--name-only", "-z", "--no-renames", "--diff-filter=d", mb, cwd=root)
    untracked = git.run("ls-files", "-z", "--others", "--exclude-standard", cwd=root)
    if diff.returncode != 0:
        raise DevkitError(f"`git diff {mb}` failed: {diff.err.strip()}")
    paths = {p for p in (diff.out + untracked.out).split("\0") if p}
    return sorted(paths)


def changed_report(base: str, head: str, root: Path, pin: str | None = None) -> Report:
    """Lint the Python files changed between the merge base of base and head."""
    return run(python_files(git.changed_files(base, head, cwd=root), root), root, pin=pin)


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


def staged_contents(paths: list[str], root: Path) -> dict[str, bytes]:
    """The staged content of those of `paths` whose working-tree file differs from it (unstaged
    changes): what `--staged` lints instead of the file. pre-commit stashes unstaged changes before
    its hooks run, so there this is empty."""
    if not paths:
        return {}
    r = git.run("diff", "--name-only", "-z", "--", *paths, cwd=root)
    if r.returncode != 0:
        raise DevkitError(f"`git diff` failed: {r.err.strip()}")
    out = {}
    for path in (p for p in r.out.split("\0") if p):
        blob = git.run("show", f":{path}", cwd=root)
        if blob.returncode != 0:
            raise DevkitError(f"cannot read the staged {path}: {blob.err.strip()}")
        out[path] = blob.stdout
    return out


def run(
    targets: list[str],
    root: Path,
    *,
    fix: bool = False,
    all_files: bool = False,
    pin: str | None = None,
    contents: dict[str, bytes] | None = None,
) -> Report:
    """Lint files (repository-relative) or, with all_files, the whole tree at root, with the project's
    ruff (`pin`: [tool.devkit.lint] ruff); the first note names the version that ran. `contents`:
    files linted from these bytes instead of the working tree (their staged content; never fixed).
    Never raises for a ruff problem: a check that cannot run is a Report with `error` set."""
    contents = contents or {}
    if not targets and not all_files:
        return Report("lint", (), 0, ("no Python files to lint",))
    try:
        tool = ruff.resolve(root, pin)
        cmd = tool.cmd
        files = select(["."] if all_files else targets, root, cmd)
        if not files:
            notes = (tool.label, "no Python files to lint (all excluded by ruff's settings)")
            return Report("lint", (), 0, notes)
        staged = {} if all_files else {f: contents[f] for f in files if f in contents}
        paths = ["."] if all_files else [f for f in files if f not in staged]
        notes = [tool.label]
        if fix and paths:
            _ruff(cmd, ["check", "--fix", "--force-exclude", "--quiet", "--", *paths], root)
            _ruff(cmd, ["format", "--force-exclude", "--quiet", "--", *paths], root)
            notes.append("applied ruff's safe fixes and formatting; what is left is below")
        if staged:
            what = ", ".join(staged)
            notes.append(f"linted as staged (the working tree differs): {what}")
            if fix:
                notes.append(f"not fixed (their unstaged changes would mix in): {what}")
        found = (_check(cmd, paths, root) + _format(cmd, paths, root)) if paths else []
        for path, data in staged.items():
            found += _check_staged(cmd, path, data, root) + _format_staged(cmd, path, data, root)
        found = named(found, tool)
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


def named(found: list[Violation], tool: ruff.Ruff) -> list[Violation]:
    """ruff's findings with their rules' names (`unused-import`), which ruff's check output lacks
    before 0.15: then they come from `ruff rule --all` (devkit.ruff.rule_names)."""
    if all(v.name != v.code for v in found):
        return found
    names = ruff.rule_names(tool.cmd, tool.version)
    return [v._replace(name=names.get(v.code, v.name)) if v.name == v.code else v for v in found]


def _check_staged(cmd: list[str], path: str, data: bytes, root: Path) -> list[Violation]:
    """`ruff check` of one file's staged content (standard input, read as the file at path)."""
    args = ["check", "--output-format", "json", "--force-exclude", "--no-fix"]
    r = _ruff_stdin(cmd, [*args, "--stdin-filename", path, "-"], data, root)
    items = _json(r)
    if r.returncode not in (0, 1) or items is None:
        raise RuntimeError(_failure("check", r))
    return [to_violation(i, root) for i in items]


def _format_staged(cmd: list[str], path: str, data: bytes, root: Path) -> list[Violation]:
    """`ruff format --check` of one file's staged content: exit 1 is "would reformat"."""
    args = ["format", "--check", "--force-exclude", "--stdin-filename", path, "-"]
    r = _ruff_stdin(cmd, args, data, root)
    if r.returncode == 1:
        return [unformatted({"filename": str(root / path)}, root)]
    if r.returncode not in (0, 2):  # 2: a syntax error, which `ruff check` reports
        raise RuntimeError(_failure("format --check", r))
    return []


def _ruff_stdin(cmd: list[str], args: list[str], data: bytes, root: Path) -> proc.Result:
    r = proc.run(*cmd, *args, cwd=root, input=data)
    if r.returncode == 127:
        raise RuffMissing(f"ruff could not be started: {r.err.strip()}")
    return r


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
