"""devkit init: write devkit's conventions into a repository (never overwriting anything silently)."""

from __future__ import annotations

import argparse
import difflib
import os
import stat
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import tomlkit
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import InlineTable

from devkit import __version__, config, files, git, hooks, resources
from devkit.checks.news import ASSIGN_WORKFLOW, BACKENDAI_ASSIGN
from devkit.conventions.settings import PRESETS, NewsSettings
from devkit.errors import ConfigError, DevkitError

WORKFLOW = ".github/workflows/devkit.yml"
PRE_COMMIT = ".pre-commit-config.yaml"
TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    # lablup/backend.ai's [[tool.towncrier.type]] list, in its order
    "backend.ai": (
        ("breaking", "Breaking Changes"),
        ("feature", "Features"),
        ("enhance", "Improvements"),
        ("deprecation", "Deprecations"),
        ("fix", "Fixes"),
        ("doc", "Documentation Updates"),
        ("deps", "External Dependency Updates"),
        ("misc", "Miscellaneous"),
        ("test", "Test Updates"),
    ),
    "conventional": (
        ("breaking", "Breaking Changes"),
        ("feature", "Features"),
        ("fix", "Bug Fixes"),
        ("deprecation", "Deprecations"),
        ("doc", "Documentation"),
        ("misc", "Miscellaneous"),
    ),
}


class Change(NamedTuple):
    path: str  # relative to the repository root
    action: (
        str  # "create" | "update" (only adds) | "overwrite" (changes what is there) | "unchanged"
    )
    old: str | None
    new: str
    note: str = ""


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    parser.add_argument("directory", nargs="?", default=".", help="the repository (default: here)")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="the conventions to use (default: the pyproject's [tool.devkit].preset, else "
        "backend.ai in a tree shaped like Backend.AI's, else conventional)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be written, write nothing"
    )
    parser.add_argument(
        "--install-hooks",
        action="store_true",
        help="then install pre-commit's git hooks (pre-commit, commit-msg, pre-push) in this clone",
    )
    parser.add_argument(
        "--assign-workflow",
        action="store_true",
        help=f"also write {ASSIGN_WORKFLOW}: it numbers placeholder fragments (changes/fix.md) "
        "in each pull request and commits the rename",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--force",
        action="store_true",
        help="replace files that exist and differ, and change a preset already set (the diff is "
        "still shown)",
    )
    existing.add_argument(
        "--keep",
        action="store_true",
        help="keep every file that exists and differs, without asking (the default without a "
        "terminal)",
    )
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask before writing new files "
        "and additions (overwrites still need --force or a yes on a terminal)",
    )


def issue_format(root: Path) -> str:
    """A link to the pull request when origin is on GitHub, else `(#N)`."""
    url = git.run("remote", "get-url", "origin", cwd=root).out.strip()
    for prefix in ("https://github.com/", "git@github.com:", "ssh://git@github.com/"):
        if url.startswith(prefix):
            slug = url.removeprefix(prefix).removesuffix(".git").strip("/")
            return f"([#{{issue}}](https://github.com/{slug}/pull/{{issue}}))"
    return "(#{issue})"


def towncrier_table(preset: str, root: Path) -> Any:
    t = tomlkit.table()
    t.add("directory", "changes")
    t.add("filename", "CHANGELOG.md")
    t.add("template", "changes/template.md")
    t.add("start_string", "<!-- towncrier release notes start -->\n")
    t.add("issue_format", issue_format(root))
    t.add("underlines", ["", "", ""])
    types = tomlkit.aot()
    for key, name in TYPES[preset]:
        row = tomlkit.table()
        row.add("directory", key)
        row.add("name", name)
        row.add("showcontent", True)
        types.append(row)
    t.add("type", types)
    return t


def merge_pyproject(old: str | None, preset: str, root: Path) -> tuple[str, bool, list[str]]:
    """(new text, whether an existing value changes, what was done); comments and keys are kept."""
    try:
        doc = tomlkit.parse(old or "")
    except TOMLKitError as exc:
        raise DevkitError(
            f"pyproject.toml is not valid TOML: {exc}", "Fix it, then run `devkit init` again."
        ) from None
    except RecursionError:
        raise DevkitError(
            "pyproject.toml is not valid TOML: arrays or tables nested too deeply",
            "Flatten the nesting, then run `devkit init` again.",
        ) from None
    done: list[str] = []
    conflict = False
    if "tool" not in doc:
        doc.add("tool", tomlkit.table(is_super_table=True))
    tool = doc["tool"]
    if isinstance(tool, InlineTable) and ("devkit" not in tool or "towncrier" not in tool):
        raise ConfigError(
            "pyproject.toml",
            "tool",
            "is an inline table (`tool = {...}`): devkit init cannot add [tool.devkit] to it",
            "Write it as [tool.<name>] tables, then run `devkit init` again.",
        )
    if not isinstance(tool, dict) or not isinstance(tool.get("devkit", {}), dict):
        raise DevkitError(
            "pyproject.toml: `tool` and `tool.devkit` must be tables",
            "Fix it, then run `devkit init` again.",
        )
    # [tool.*] tables split by another table (`[tool.a]`, `[project]`, `[tool.b]`) come as a proxy:
    # new tables go after the first part, separated by a blank line
    split = isinstance(tool, OutOfOrderTableProxy)

    def add(name: str, table: Any) -> None:
        if split:
            table.add(tomlkit.nl())
        tool[name] = table

    if "devkit" not in tool:
        devkit = tomlkit.table()
        devkit.add("preset", preset)
        add("devkit", devkit)
        done.append("adds [tool.devkit]")
    elif tool["devkit"].get("preset") != preset:
        if "preset" in tool["devkit"]:
            conflict = True
            done.append(
                f"changes tool.devkit.preset from {tool['devkit']['preset']!r} to {preset!r}"
            )
        else:
            done.append("adds tool.devkit.preset")
        tool["devkit"]["preset"] = preset
    if "towncrier" not in tool:
        add("towncrier", towncrier_table(preset, root))
        done.append("adds [tool.towncrier]")
    return tomlkit.dumps(doc), conflict, done


def _render(name: str, **values: Any) -> str:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string(resources.template(*name.split("/")).read_text(encoding="utf-8")).render(
        **values
    )


def _read(path: Path) -> str | None:
    """The file's text as it is (CRLF kept), None when it does not exist."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DevkitError(f"cannot read {path}: {exc}") from None


def _like(old: str | None, new: str) -> str:
    """new with old's line endings: a CRLF file stays CRLF."""
    if old is not None and "\r\n" in old:
        return new.replace("\r\n", "\n").replace("\n", "\r\n")
    return new


def _link_note(root: Path, rel: str) -> str:
    path = root / rel
    if not path.is_symlink():
        return ""
    return f"a symlink to {os.readlink(path)}: written there, the link kept"


def _outside_link(root: Path, rel: str) -> tuple[str, str] | None:
    """(folder, where it leads) for the first folder on rel's way that is a symlink out of the
    repository; None when every folder stays inside."""
    top = root.resolve()
    here = root
    for part in Path(rel).parent.parts:
        here = here / part
        if here.is_symlink() and not here.resolve().is_relative_to(top):
            return here.relative_to(root).as_posix(), os.readlink(here)
    return None


def _change(root: Path, rel: str, old: str | None, new: str, action: str, note: str = "") -> Change:
    outside = _outside_link(root, rel)
    if outside:
        folder, target = outside
        raise DevkitError(
            f"{rel}: `{folder}` is a symlink to {target}, outside the repository; "
            "devkit init writes only inside it, and nothing was written",
            f"Make `{folder}` a folder of the repository (or a link inside it), then run "
            "`devkit init` again.",
        )
    link = _link_note(root, rel)
    return Change(rel, action, old, _like(old, new), "; ".join(n for n in (note, link) if n))


def _file(root: Path, rel: str, new: str) -> Change:
    old = _read(root / rel)
    if old is None:
        return _change(root, rel, None, new, "create")
    return _change(root, rel, old, new, "unchanged" if old == _like(old, new) else "overwrite")


def _inside(root: Path, directory: str) -> str:
    """The fragment directory relative to root; one outside the repository is refused."""
    path = Path(directory) if os.path.isabs(directory) else root / directory
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(
            str(root / "pyproject.toml"),
            "tool.towncrier.directory",
            f"{directory!r} is outside the repository; devkit init writes only inside it",
            "Point it at a folder of the repository (e.g. `changes`), then run `devkit init` again.",
        ) from None


def plan(root: Path, preset: str, devkit_repo: str, assign_workflow: bool = False) -> list[Change]:
    """Every file devkit init would write, with what it would do to it (no I/O but reading)."""
    old_py = _read(root / "pyproject.toml")
    new_py, conflict, done = merge_pyproject(old_py, preset, root)
    if old_py is None:
        py = _change(root, "pyproject.toml", None, new_py, "create")
    elif new_py == old_py:
        py = _change(
            root,
            "pyproject.toml",
            old_py,
            new_py,
            "unchanged",
            "already has [tool.devkit] and [tool.towncrier]",
        )
    else:
        action = "overwrite" if conflict else "update"
        py = _change(root, "pyproject.toml", old_py, new_py, action, "; ".join(done))
    towncrier = files.parse_toml(new_py, "pyproject.toml").get("tool", {}).get("towncrier", {})
    directory = _inside(root, str(towncrier.get("directory", "changes")))
    types = (
        tuple(
            (str(t["directory"]), str(t.get("name", t["directory"])))
            for t in towncrier.get("type", ())
            if isinstance(t, dict) and "directory" in t
        )
        or TYPES[preset]
    )
    news = NewsSettings(**PRESETS[preset].get("news", {}))
    readme = _render(
        "towncrier/README.md",
        directory=directory,
        types=types,
        example="fix" if "fix" in dict(types) else types[0][0],
        changelog=towncrier.get("filename", "CHANGELOG.md"),
        single_line=news.single_line,
        skip_labels=news.skip_labels,
        assign_workflow=assign_workflow,
    )
    changes = [py, _file(root, f"{directory}/README.md", readme)]
    if towncrier.get("template") == "changes/template.md":
        template = resources.template("towncrier", "template.md").read_text(encoding="utf-8")
        changes.append(_file(root, "changes/template.md", template))
    pre_commit = _render(
        "pre-commit/pre-commit-config.yaml", devkit_repo=devkit_repo, devkit_version=__version__
    )
    changes.append(_file(root, PRE_COMMIT, pre_commit))
    workflow = resources.template("ci", "github-actions.yml").read_text(encoding="utf-8")
    changes.append(_file(root, WORKFLOW, workflow))
    if assign_workflow:
        assign = resources.template("ci", "news-assign.yml").read_text(encoding="utf-8")
        changes.append(_file(root, ASSIGN_WORKFLOW, assign))
    return changes


def diff(change: Change) -> str:
    old = (change.old or "").splitlines(keepends=True)
    new = change.new.splitlines(keepends=True)
    before = "/dev/null" if change.old is None else f"a/{change.path}"
    lines = difflib.unified_diff(old, new, before, f"b/{change.path}")
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _ask(question: str, default: bool) -> bool:
    sys.stdout.write(f"{question} [{'Y/n' if default else 'y/N'}] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return default if not answer else answer in ("y", "yes")


def _write(root: Path, change: Change) -> None:
    """Atomically, through a symlink (the link is kept), with the file's mode kept; a failure
    leaves no temp file."""
    target = root / change.path
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    files.write_whole(target, change.new.encode("utf-8"), mode)


def _write_all(root: Path, todo: list[Change]) -> None:
    """Each file in turn; a failure names the file, and what was written before it."""
    written: list[str] = []
    for c in todo:
        try:
            _write(root, c)
        except OSError as exc:
            done = f"wrote {', '.join(written)}; " if written else "nothing was written; "
            raise DevkitError(
                f"cannot write {c.path}: {exc.strerror}; {done}"
                f"not written: {', '.join(x.path for x in todo[len(written) :])}",
                "Fix the permissions, then run `devkit init` again (it writes what is missing).",
            ) from None
        written.append(c.path)
        print(f"wrote {c.path}")


def _root(directory: str) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise DevkitError(f"no such directory: {directory}")
    r = git.run("rev-parse", "--show-toplevel", cwd=path)
    return Path(r.out.strip()) if r.returncode == 0 else path.resolve()


# a tree shaped like Backend.AI's: two of these make `devkit init` pick the backend.ai preset
BACKENDAI_SIGNS = ("pants.toml", "changes/template.md", ".github/workflows/timeline-check.yml")


def choose_preset(given: str | None, cfg: Any, root: Path) -> tuple[str, str]:
    """(the preset, why): --preset, else the pyproject's, else what the tree looks like."""
    if given:
        return given, ""
    if cfg is not None and cfg.source:
        return cfg.preset, f"[tool.devkit] in {Path(cfg.source).name}"
    signs = [p for p in BACKENDAI_SIGNS if (root / p).is_file()]
    if len(signs) >= 2:
        return "backend.ai", "detected: " + ", ".join(signs)
    return "conventional", "the default"


def written_by_devkit(text: str | None) -> bool:
    """Whether a file says it was written by `devkit init` (every file it writes does, near the top)."""
    return text is not None and "`devkit init`" in text[:600]


def keep_reason(change: Change) -> str:
    """Why a file that exists and differs is kept (without --force)."""
    if written_by_devkit(change.old):
        return "written by `devkit init`, an older version or edited since: --force updates it"
    return "exists and was not written by devkit: the project's own; --force replaces it"


# what the `devkit ci` step does, as other workflows do it: (what to look for, what that check is)
REPLACED_CHECKS = (
    ("towncrier.check", "the news-fragment check"),
    ("towncrier check", "the news-fragment check"),
    ("pr-title-prefix", "the pull request title check"),
    ("commitlint", "the commit message check"),
)


def replaced_workflows(root: Path) -> list[str]:
    """The project's workflows whose checks `devkit ci` does too: `name.yml (what)` each."""
    folder = root / ".github" / "workflows"
    out = []
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else ():
        if path.name in (Path(WORKFLOW).name, Path(ASSIGN_WORKFLOW).name):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        what = list(dict.fromkeys(w for needle, w in REPLACED_CHECKS if needle in text))
        if what:
            out.append(f"{path.name} ({', '.join(what)})")
    return out


def _replaces_note(root: Path) -> str:
    """Which of the project's workflows the new `devkit ci` step replaces, and what stays."""
    found = replaced_workflows(root)
    if not found:
        return ""
    stays = ""
    if (root / BACKENDAI_ASSIGN).is_file():
        stays = (
            " Keep timeline-check.yml's assign-pr-number job: it numbers the fragments, and "
            "`devkit ci` counts on it."
        )
    return (
        f"\nreplaces: {WORKFLOW} runs `devkit ci`, which also does the checks of "
        f"{'; '.join(found)}: once `devkit` is a required check, those can go.{stays}"
    )


def run(args: argparse.Namespace) -> int:
    root = _root(args.directory)
    try:
        cfg = config.load(root)
    except DevkitError:
        cfg = None  # init may be what fixes the config; merge_pyproject reports unreadable TOML
    opts = config.section(cfg or config.build({}, "", ""), "init")
    preset, why = choose_preset(args.preset, cfg, root)
    changes = plan(root, preset, opts["devkit_repo"], args.assign_workflow)
    tty = sys.stdin.isatty()
    # without --force, a terminal's yes or a changed preset, what exists and differs is kept
    keep_all = args.keep or (not tty and not args.force)
    width = max(len(c.action) for c in changes)
    width = max(width, len("keep")) if keep_all else width
    print(f"devkit init ({preset} preset{', ' + why if why else ''}) in {root}:")
    for c in changes:
        action, note = c.action, c.note
        if c.action == "overwrite" and keep_all and c.path != "pyproject.toml":
            action, note = "keep", keep_reason(c)
        print(f"  {action.ljust(width)}  {c.path}" + (f"  ({note})" if note else ""))
    preset_change = [c for c in changes if c.action == "overwrite" and c.path == "pyproject.toml"]
    if preset_change and keep_all:
        raise DevkitError(
            f"pyproject.toml: {preset_change[0].note}, which changes a setting the project made; "
            "nothing was written",
            "Re-run with --force to change it, or without --preset to keep it.",
        )
    overwrites = [c for c in changes if c.action == "overwrite" and not keep_all]
    todo = [c for c in changes if c.action in ("create", "update")] + overwrites
    shown = [c for c in changes if c.action != "unchanged"] if args.dry_run else overwrites
    for c in shown:
        sys.stdout.write("\n" + diff(c))
    note = _replaces_note(root)
    if note:
        print(note)
    if args.dry_run or not todo:
        print("\n" + ("dry run: nothing was written" if args.dry_run else "nothing to do"))
        if args.dry_run:
            return 0
        return _install_hooks(root, args.install_hooks) or _next(args.install_hooks)
    if tty and not args.yes and not _ask(f"\nWrite {len(todo)} file(s)?", True):
        print("nothing was written")
        return 1
    skipped = []
    for c in overwrites:
        if not args.force and not _ask(f"Overwrite {c.path}?", False):
            skipped.append(c.path)
    _write_all(root, [c for c in todo if c.path not in skipped])
    for path in skipped:
        print(f"kept {path} (not overwritten)")
    return _install_hooks(root, args.install_hooks) or _next(args.install_hooks)


def _next(installed: bool) -> int:
    """The one next step (init, doctor and the docs say it in the same words)."""
    print(f"next: {hooks.NEXT_STEP}")
    return 0


def _install_hooks(root: Path, wanted: bool) -> int:
    """`--install-hooks`: pre-commit's hooks for every stage devkit uses, checked afterwards."""
    if not wanted:
        return 0
    for line in hooks.install(root):
        print(line)
    missing = [h for h in hooks.states(root) if not h.installed]
    if missing:
        raise DevkitError(
            f"the {missing[0].hook_type} hook is still missing after `pre-commit install` "
            f"({missing[0].detail}: {missing[0].path})"
        )
    print(f"hooks installed: {', '.join(hooks.HOOK_TYPES)} (`devkit doctor` checks them)")
    return 0
