"""devkit news new | assign | preview"""

from __future__ import annotations

import argparse
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from devkit import git, history, towncrier_config
from devkit.commands._common import add_config, add_pr, pr_number, settings
from devkit.conventions.fragment_rules import (
    FragmentName,
    canonical,
    check_content,
    is_exempt,
    parse_name,
)
from devkit.conventions.settings import Settings
from devkit.conventions.suggest import did_you_mean
from devkit.errors import DevkitError


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    sub = path[1]
    if sub == "new":
        parser.add_argument("type", help="the fragment type (from the towncrier config)")
        parser.add_argument(
            "text", nargs="?", help="the entry, one line (`-` reads standard input)"
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
            help="the version to title the section with "
            "(default: [project].version, else 'Unreleased')",
        )
    add_config(parser)


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    root = git.toplevel()
    return root, settings(args, root), towncrier_config.load(root)


def new(args: argparse.Namespace) -> int:
    root, cfg, news = _load(args)
    fc = news.fragments
    if args.type not in fc.types:
        guess = did_you_mean(args.type, fc.types)
        raise DevkitError(
            f"`{args.type}` is not a fragment type; the towncrier config has: {', '.join(fc.types)}",
            f"Did you mean `{guess}`?" if guess else "",
        )
    text = sys.stdin.read() if args.text == "-" else args.text
    if text is None:
        raise DevkitError('give the entry\'s text: devkit news new TYPE "What changed, for users"')
    text = text.strip() + "\n"
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
    news.fragment_dir.mkdir(parents=True, exist_ok=True)
    target = news.fragment_dir / name
    tmp = target.with_name(f".{name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    print(f"wrote {target.relative_to(root)}")
    return 0


def co_author(value: str) -> str:
    """`Name <email>`, as a Co-authored-by trailer wants it."""
    if not re.fullmatch(r"[^<>\n]+ <[^<>\s]+>", value):
        raise argparse.ArgumentTypeError(f"expected 'Name <email>', got {value!r}")
    return value


def assign(args: argparse.Namespace) -> int:
    root, cfg, news = _load(args)
    fc = news.fragments
    if not news.fragment_dir.is_dir():
        raise DevkitError(f"there is no fragment directory {fc.directory}/")
    names = sorted(os.listdir(news.fragment_dir))
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
    for (src, dst), line in zip(plan, lines, strict=True):
        print(line)
        if not args.dry_run:
            os.rename(news.fragment_dir / src, news.fragment_dir / dst)
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


def _project_version(root: Path) -> str:
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        return str(data.get("project", {}).get("version") or "Unreleased")
    except (OSError, tomllib.TOMLDecodeError):
        return "Unreleased"


def _refuse_special_files(news: towncrier_config.NewsConfig) -> None:
    """towncrier opens every entry of the fragment directory: a FIFO (or a link to one) would make
    it wait forever."""
    if not news.fragment_dir.is_dir():
        return
    for name in sorted(os.listdir(news.fragment_dir)):
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
    version = args.project_version or _project_version(root)
    cmd = [
        sys.executable,
        "-m",
        "towncrier",
        "build",
        "--draft",
        "--version",
        version,
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
    if news.fragment_dir.is_dir():
        for name in sorted(os.listdir(news.fragment_dir)):
            parsed = parse_name(name, fc)
            if is_exempt(name, fc, cfg.news) or not isinstance(parsed, FragmentName):
                continue
            if parsed.placeholder and (news.fragment_dir / name).is_file():
                text = (news.fragment_dir / name).read_text(encoding="utf-8", errors="replace")
                kind = news.type_names.get(parsed.type, parsed.type)
                rows.append(f"- {kind}: {' '.join(text.split())} ({fc.directory}/{name})")
    if not rows:
        return ""
    head = "\nNot numbered yet (left out above; `devkit news assign N` numbers them):\n\n"
    return head + "\n".join(rows) + "\n"


def run(args: argparse.Namespace) -> int:
    return {"new": new, "assign": assign, "preview": preview}[args.command[1]](args)
