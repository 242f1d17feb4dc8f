"""devkit news new | assign | preview"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from devkit import files, git, history, towncrier_config
from devkit.commands._common import add_config, add_pr, pr_number, settings
from devkit.conventions.fragment_rules import (
    FragmentName,
    canonical,
    check_content,
    is_exempt,
    parse_name,
)
from devkit.conventions.message import as_bytes
from devkit.conventions.settings import Settings
from devkit.conventions.suggest import did_you_mean
from devkit.errors import ConfigError, DevkitError

ENTRY_LIMIT = files.MiB  # a fragment's text: one line for users, never megabytes


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    sub = path[1]
    if sub == "new":
        parser.add_argument("type", help="the fragment type (from the towncrier config)")
        parser.add_argument(
            "text",
            nargs="?",
            help="the entry, one line (`-` reads standard input; none on a terminal: the editor)",
        )
        parser.add_argument(
            "--edit",
            action="store_true",
            help="write the entry in your editor (git's: $GIT_EDITOR, core.editor, $VISUAL, "
            "$EDITOR), starting from TEXT when given",
        )
        add_pr(
            parser,
            "the pull request number (default: a placeholder "
            "name that `devkit news assign N` renames later)",
        )
    elif sub == "assign":
        parser.add_argument("pr", type=pr_number, metavar="N", help="the pull request number")
        parser.add_argument(
            "--dry-run", action="store_true", help="print the renames, change nothing"
        )
        parser.add_argument(
            "--base",
            metavar="REF",
            help="only the placeholders the branch adds since REF (as the news-assign workflow does)",
        )
        parser.add_argument(
            "--deepen",
            action="store_true",
            help="with --base: fetch the base and deepen a shallow clone until the merge base is "
            "there (as `devkit ci --deepen`)",
        )
        parser.add_argument(
            "--commit",
            action="store_true",
            help="commit the renames (`docs: number the news fragments for #N`)",
        )
        parser.add_argument(
            "--co-author",
            type=co_author,
            metavar="'NAME <EMAIL>'",
            help="with --commit: credit them in a Co-authored-by trailer (the branch's author, "
            "when a bot commits)",
        )
    elif sub == "preview":
        parser.add_argument(
            "--version",
            dest="project_version",
            help="the version to title the section with (default: [tool.towncrier].version, "
            "else the VERSION file, else [project].version, else 'Unreleased')",
        )
    add_config(parser)


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    root = git.toplevel()
    return root, settings(args, root), towncrier_config.load(root)


def new(args: argparse.Namespace) -> int:
    _, cfg, news = _load(args)
    fc = news.fragments
    if args.type not in fc.types:
        guess = did_you_mean(args.type, fc.types)
        raise DevkitError(
            f"`{args.type}` is not a fragment type; the towncrier config has: {', '.join(fc.types)}",
            f"Did you mean `{guess}`?" if guess else "",
        )
    if args.edit or (args.text is None and sys.stdin.isatty()):
        given = _entry_text(args.text) if args.text is not None else ""
        text = edited(news, args.type, given).strip() + "\n"
    elif args.text is None:
        raise DevkitError(
            'give the entry\'s text: devkit news new TYPE "What changed, for users"',
            "Or write it in your editor: `devkit news new TYPE --edit`.",
        )
    else:
        text = _entry_text(args.text).strip() + "\n"
    if args.pr is not None:
        name = canonical(str(args.pr), args.type, fc)
        counter = 0
        while (news.fragment_dir / name).exists():
            counter += 1
            name = canonical(str(args.pr), args.type, fc, counter)
    else:
        name = f"{args.type}.{fc.extension}" if fc.extension else args.type
        if (news.fragment_dir / name).exists():
            raise DevkitError(
                f"{fc.directory}/{name} already exists",
                "Edit it, or pass --pr N for a numbered fragment.",
            )
    path = f"{fc.directory}/{name}"
    problems = [v for v in check_content(path, text.encode(), cfg.news) if v.severity == "error"]
    if problems:
        raise DevkitError(f"not written: {problems[0].message}", problems[0].hint)
    _write_fragment(news, name, text)
    print(f"wrote {path}")
    return 0


EDIT_HELP = """\
# The news fragment for `{type}` ({name}): what changed, for users, in one line.
# Lines starting with `#` are left out; an empty entry writes nothing.
"""


def edited(news: towncrier_config.NewsConfig, type_: str, given: str) -> str:
    """The entry as written in git's editor (a file in the git directory, as for a commit message),
    without `#` lines; an empty one writes nothing."""
    root = news.base_directory
    editor = git.run("var", "GIT_EDITOR", cwd=root).out.strip() or "vi"
    where = git.run("rev-parse", "--git-path", "DEVKIT_FRAGMENT.md", cwd=root).out.strip()
    path = Path(where) if os.path.isabs(where) else root / where
    help_text = EDIT_HELP.format(type=type_, name=news.type_names.get(type_, type_))
    try:
        path.write_text(f"{given.strip()}\n{help_text}", encoding="utf-8")
        # as git runs it: the editor setting is a shell command, the file its argument
        done = subprocess.run(["sh", "-c", f'{editor} "$@"', editor, str(path)], check=False)
        if done.returncode != 0:
            raise DevkitError(
                f"the editor (`{editor}`) exited with {done.returncode}; nothing was written"
            )
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise DevkitError(f"cannot edit the entry in {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    entry = "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()
    if not entry:
        raise DevkitError("the entry is empty; nothing was written")
    return entry


def _entry_text(given: str) -> str:
    """The entry as the user gave it (`-`: standard input, bounded), which must be UTF-8: the
    fragment is written as UTF-8 and towncrier reads it so."""
    if given == "-":
        data = sys.stdin.buffer.read(ENTRY_LIMIT + 1)
        if len(data) > ENTRY_LIMIT:
            raise DevkitError(f"the entry on standard input is longer than {ENTRY_LIMIT} bytes")
        where = "standard input"
    else:
        data, where = as_bytes(given), "the entry's text"
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DevkitError(
            f"{where} is not valid UTF-8 (byte {exc.start})", "Give the text as UTF-8."
        ) from None


def _write_fragment(news: towncrier_config.NewsConfig, name: str, text: str) -> None:
    """Write one fragment through a temp file in its directory (made when missing)."""
    path = f"{news.fragments.directory}/{name}"
    target = news.fragment_dir / name
    try:
        if not towncrier_config.fragment_dir_exists(news):
            news.fragment_dir.mkdir(parents=True)
        files.write_whole(target, text.encode("utf-8"))
    except OSError as exc:
        raise DevkitError(
            f"cannot write {path}: {exc.strerror}",
            f"Make `{news.fragments.directory}/` writable, then run it again.",
        ) from None


def co_author(value: str) -> str:
    """`Name <email>`, as a Co-authored-by trailer wants it."""
    if not re.fullmatch(r"[^<>\n]+ <[^<>\s]+>", value):
        raise argparse.ArgumentTypeError(f"expected 'Name <email>', got {value!r}")
    return value


def assign(args: argparse.Namespace) -> int:
    root, cfg, news = _load(args)
    fc = news.fragments
    if not towncrier_config.fragment_dir_exists(news):
        raise DevkitError(f"there is no fragment directory {fc.directory}/")
    names = [n for n in _listdir(news) if _is_regular(news.fragment_dir / n)]
    if args.base:
        history.resolve(
            args.base,
            cwd=root,
            deepen=args.deepen,
            advice=f"fetch it, e.g. `git fetch origin {args.base}`, or run with `--deepen`",
        )
        prefix = f"{fc.directory}/"
        added = {p.removeprefix(prefix) for p in git.added_files(args.base, fc.directory, cwd=root)}
        names = [n for n in names if n in added]
    plan: list[tuple[str, str]] = []
    for entry in names:
        if is_exempt(entry, fc, cfg.news):
            continue
        parsed = parse_name(entry, fc)
        if isinstance(parsed, FragmentName) and parsed.placeholder:
            plan.append((entry, canonical(str(args.pr), parsed.type, fc)))
    if not plan:
        print("no placeholder fragments to rename")
        return 0
    targets = [t for _, t in plan]
    for src, dst in plan:
        if targets.count(dst) > 1:
            raise DevkitError(
                f"cannot rename {src}: another placeholder also becomes {dst}; nothing was renamed",
                "Merge the two entries into one file first.",
            )
        if (news.fragment_dir / dst).exists():
            raise DevkitError(
                f"cannot rename {src}: {fc.directory}/{dst} already exists; nothing was renamed",
                "Merge the entries, or remove the old fragment.",
            )
    lines = [f"{fc.directory}/{src} -> {fc.directory}/{dst}" for src, dst in plan]
    if not args.dry_run:
        _rename_all(news, plan)
    for line in lines:
        print(line)
    if args.commit and not args.dry_run:
        paths = [f"{fc.directory}/{n}" for pair in plan for n in pair]
        for cmd in (
            ("add", "-A", "--", *paths),
            (
                "commit",
                "-q",
                "-m",
                f"docs: number the news fragments for #{args.pr}",
                "-m",
                "\n".join(lines),
                *(("-m", f"Co-authored-by: {args.co_author}") if args.co_author else ()),
            ),
        ):
            r = git.run(*cmd, cwd=root)
            if r.returncode != 0:
                raise DevkitError(f"`git {cmd[0]}` failed: {(r.err or r.out).strip()}")
        print(f"committed: docs: number the news fragments for #{args.pr}")
    return 0


def _listdir(news: towncrier_config.NewsConfig) -> list[str]:
    try:
        return sorted(os.listdir(news.fragment_dir))
    except OSError as exc:
        raise DevkitError(
            f"cannot read the fragment directory {news.fragments.directory}/: {exc.strerror}",
            "Make it readable (e.g. `chmod u+rx`).",
        ) from None


def _is_regular(path: Path) -> bool:
    """A regular file itself (not a folder, not a link): what a placeholder fragment is."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _rename_all(news: towncrier_config.NewsConfig, plan: list[tuple[str, str]]) -> None:
    """Every rename of the plan, or none: a failure puts back the ones already done."""
    done: list[tuple[str, str]] = []
    for src, dst in plan:
        try:
            os.rename(news.fragment_dir / src, news.fragment_dir / dst)
        except OSError as exc:
            undone = [s for s, d in reversed(done) if not _renamed_back(news, d, s)]
            state = (
                "nothing was renamed"
                if not undone
                else "could not put back "
                + ", ".join(f"{news.fragments.directory}/{s}" for s in undone)
            )
            raise DevkitError(
                f"cannot rename {news.fragments.directory}/{src}: {exc.strerror}; {state}",
                f"Make `{news.fragments.directory}/` writable, then run it again.",
            ) from None
        done.append((src, dst))


def _renamed_back(news: towncrier_config.NewsConfig, now: str, was: str) -> bool:
    try:
        os.rename(news.fragment_dir / now, news.fragment_dir / was)
        return True
    except OSError:
        return False


def _project_version(root: Path, news: towncrier_config.NewsConfig) -> str:
    """The version a draft is titled with: towncrier's `version`, the repository's VERSION file
    (Backend.AI's packages read theirs from it), [project].version, else "Unreleased". towncrier's
    own fallback, importing `package`, is not taken: a package under src/ does not import so."""
    if news.version:
        return news.version
    try:
        text = files.read_regular(root / "VERSION", "the VERSION file", 4096).decode().strip()
    except (files.Unreadable, UnicodeDecodeError):
        text = ""
    if text and "\n" not in text:
        return text
    try:
        data = files.read_toml(root / "pyproject.toml")
    except ConfigError:
        return "Unreleased"
    project = data.get("project")
    return str((project.get("version") if isinstance(project, dict) else None) or "Unreleased")


def _project_name(news: towncrier_config.NewsConfig) -> str:
    """The name towncrier would give the project, without importing `package` for it (its title,
    as towncrier gives it to a package that does not use incremental)."""
    return news.name or news.package.title()


def _refuse_special_files(news: towncrier_config.NewsConfig) -> None:
    """towncrier opens every entry of the fragment directory: a FIFO (or a link to one) would make
    it wait forever."""
    if not towncrier_config.fragment_dir_exists(news):
        return
    for name in _listdir(news):
        try:
            mode = os.stat(news.fragment_dir / name).st_mode
        except OSError:
            continue  # a dangling link: towncrier skips it too
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise DevkitError(
                f"{news.fragments.directory}/{name} is not a regular file; towncrier would wait on it",
                "Remove it from the fragment directory.",
            )


def preview(args: argparse.Namespace) -> int:
    root, cfg, news = _load(args)
    _refuse_special_files(news)
    version = args.project_version or _project_version(root, news)
    cmd = [
        sys.executable,
        "-m",
        "towncrier",
        "build",
        "--draft",
        "--version",
        version,
        "--name",  # given, so that towncrier never imports the project's package for it
        _project_name(news),
        "--dir",
        str(news.base_directory),
        "--config",
        news.config_file,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise DevkitError(
            f"towncrier build --draft failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}"
        )
    sys.stdout.write(r.stdout)
    sys.stdout.write(_placeholders_note(news, cfg))
    return 0


def _placeholders_note(news: towncrier_config.NewsConfig, cfg: Settings) -> str:
    """towncrier drops unnumbered fragments (fix.md) from its draft: list them instead."""
    fc = news.fragments
    rows = []
    if towncrier_config.fragment_dir_exists(news):
        for name in _listdir(news):
            parsed = parse_name(name, fc)
            if is_exempt(name, fc, cfg.news) or not isinstance(parsed, FragmentName):
                continue
            if parsed.placeholder and (news.fragment_dir / name).is_file():
                text = _read_fragment(news, name)
                kind = news.type_names.get(parsed.type, parsed.type)
                rows.append(f"- {kind}: {' '.join(text.split())} ({fc.directory}/{name})")
    if not rows:
        return ""
    head = "\nNot numbered yet (left out above; `devkit news assign N` numbers them):\n\n"
    return head + "\n".join(rows) + "\n"


def _read_fragment(news: towncrier_config.NewsConfig, name: str) -> str:
    try:
        data = files.read_regular(news.fragment_dir / name, "the fragment", ENTRY_LIMIT)
    except files.Unreadable as exc:
        raise DevkitError(exc.message, "Make it readable (`chmod u+r`).") from None
    return data.decode("utf-8", errors="replace")


def run(args: argparse.Namespace) -> int:
    return {"new": new, "assign": assign, "preview": preview}[args.command[1]](args)
