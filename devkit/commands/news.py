"""devkit news new | assign | preview"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from devkit import git, towncrier_config
from devkit.commands._common import add_config, settings
from devkit.conventions.fragment_rules import (
    FragmentName,
    canonical,
    check_content,
    is_exempt,
    parse_name,
)
from devkit.conventions.suggest import did_you_mean
from devkit.errors import DevkitError


def configure(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    sub = path[1]
    if sub == "new":
        parser.add_argument("type", help="the fragment type (from the towncrier config)")
        parser.add_argument(
            "text", nargs="?", help="the entry, one line (`-` reads standard input)"
        )
        parser.add_argument(
            "--pr",
            type=int,
            metavar="N",
            help="the pull request number (default: a placeholder "
            "name that `devkit news assign N` renames later)",
        )
    elif sub == "assign":
        parser.add_argument("pr", type=int, metavar="N", help="the pull request number")
        parser.add_argument(
            "--dry-run", action="store_true", help="print the renames, change nothing"
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


def assign(args: argparse.Namespace) -> int:
    _, cfg, news = _load(args)
    fc = news.fragments
    if not news.fragment_dir.is_dir():
        raise DevkitError(f"there is no fragment directory {fc.directory}/")
    plan: list[tuple[str, str]] = []
    for entry in sorted(os.listdir(news.fragment_dir)):
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
    for src, dst in plan:
        print(f"{fc.directory}/{src} -> {fc.directory}/{dst}")
        if not args.dry_run:
            os.rename(news.fragment_dir / src, news.fragment_dir / dst)
    return 0


def _project_version(root: Path) -> str:
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        return str(data.get("project", {}).get("version") or "Unreleased")
    except (OSError, tomllib.TOMLDecodeError):
        return "Unreleased"


def preview(args: argparse.Namespace) -> int:
    root, _, news = _load(args)
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
    return 0


def run(args: argparse.Namespace) -> int:
    return {"new": new, "assign": assign, "preview": preview}[args.command[1]](args)
