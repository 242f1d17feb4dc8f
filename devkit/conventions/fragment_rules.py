"""News-fragment rules: file names and contents, given the towncrier types (no I/O here)."""

from __future__ import annotations

import fnmatch
import re

from devkit.conventions.settings import NewsSettings
from devkit.conventions.suggest import did_you_mean
from devkit.conventions.verdict import violation
from devkit.record import Record
from devkit.violations import ERROR, WARNING, Location, Violation

TEMPLATE_TEXT = "Add your info here"
_SENTENCE_END_RE = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)[.!?] +(?=[A-Z])")


class FragmentConfig(Record):
    """What the towncrier config says about fragments (built by devkit.towncrier_config)."""

    directory: str  # relative to the repository root, e.g. "changes"
    types: tuple[str, ...]
    extension: str = "md"  # from towncrier's `filename` suffix; "" when it has none
    ignore: tuple[str, ...] = ()  # the template's basename and `ignore` patterns
    orphan_prefix: str = "+"


class FragmentName(Record):
    number: str  # "" for a placeholder or an orphan
    type: str
    counter: int = 0
    placeholder: bool = False


class Numbering(Record):
    """A workflow that gives the placeholders a pull request adds (`fix.md`) its number on a push."""

    name: str  # as messages name it, e.g. "timeline-check.yml (its assign-pr-number job)"
    # the bases on which it also renumbers an added fragment that carries another number
    renumbers: tuple[str, ...] = ()


class PullFacts(Record):
    """What the fragment rules know about the pull request besides its number."""

    base: str = ""  # the base branch's name, e.g. "main" ("" when unknown)
    fork: bool = False  # the head is in another repository: no workflow of this one pushes there
    originals: tuple[str, ...] = ()  # a backport's: the numbers its fragments keep


NO_FACTS = PullFacts()


class Entry(Record):
    name: str  # basename inside the fragment directory
    kind: str  # "file" | "symlink" | "dir" | "other"
    data: bytes | None = None  # content of a regular file


def is_exempt(name: str, cfg: FragmentConfig, settings: NewsSettings) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatch(lowered, p.lower()) for p in (*settings.exempt, *cfg.ignore))


def canonical(number: str, type_: str, cfg: FragmentConfig, counter: int = 0) -> str:
    parts = (
        [number, type_]
        + ([str(counter)] if counter else [])
        + ([cfg.extension] if cfg.extension else [])
    )
    return ".".join(parts)


def _digits(text: str) -> bool:
    """ASCII digits only: `²` is a digit to str.isdigit(), and int() refuses it."""
    return text.isascii() and text.isdigit()


def parse_name(name: str, cfg: FragmentConfig) -> FragmentName | tuple[str, str, str]:
    """A fragment name, or (code, message, hint) for a name devkit rejects."""
    types = cfg.types
    ext = cfg.extension
    stem = name
    if ext and name.endswith(f".{ext}"):
        stem = name[: -len(ext) - 1]
    bare = stem.lstrip(".")
    if bare in types:  # fix.md, .fix.md, fix
        return FragmentName("", bare, 0, placeholder=True)
    parts = stem.split(".")
    if len(parts) >= 2:
        number, type_ = parts[0], parts[1]
        counter = parts[2] if len(parts) == 3 else "0"
        if len(parts) <= 3 and _digits(counter):
            is_number = _digits(number) or (
                cfg.orphan_prefix and number.startswith(cfg.orphan_prefix)
            )
            if is_number and type_ in types:
                if ext and stem == name:
                    return (
                        "NF001",
                        f"`{name}` has no `.{ext}` extension",
                        f"Rename it to `{canonical(number, type_, cfg, int(counter))}`.",
                    )
                return FragmentName(
                    str(int(number)) if _digits(number) else "", type_, int(counter)
                )
            if is_number and type_ not in types:
                guess = did_you_mean(type_, types)
                hint = (
                    f"Did you mean `{canonical(number, guess, cfg, int(counter))}`?"
                    if guess
                    else f"Use one of the towncrier types: {', '.join(types)}."
                )
                return (
                    "NF002",
                    f"`{name}`: `{type_}` is not a fragment type ({', '.join(types)})",
                    hint,
                )
    # fix-123.md, 123.md, fix.123.md, bugfix.md, ...
    number = re.search(r"[0-9]+", stem)
    type_guess = next(
        (t for t in types if re.search(rf"(?<![a-z]){re.escape(t)}(?![a-z])", stem.lower())), ""
    ) or next((g for w in re.findall(r"[a-z]+", stem.lower()) if (g := did_you_mean(w, types))), "")
    if number and type_guess:
        hint = f"Rename it to `{canonical(number.group(), type_guess, cfg)}`."
    elif type_guess:
        placeholder = f"{type_guess}.{ext}" if ext else type_guess
        hint = (
            f"Rename it to `{canonical('<PR>', type_guess, cfg)}` (the pull request's number), or "
            f"`{placeholder}` until the pull request has one."
        )
    else:
        example = next((t for t in ("fix", "feature", "bugfix") if t in types), "")
        example = example or (types[0] if types else "fix")
        hint = (
            f"Name it `<number>.<type>.{ext or '<ext>'}`, e.g. `{canonical('123', example, cfg)}`."
        )
    return (
        "NF001",
        f"`{name}` is not a fragment name (`<number>.<type>.{ext}`)"
        if ext
        else f"`{name}` is not a fragment name (`<number>.<type>`)",
        hint,
    )


def _sentences(text: str) -> int:
    without_code = re.sub(r"`[^`]*`", "x", text)
    return len(_SENTENCE_END_RE.findall(without_code)) + 1


def assigned_hint(numbering: Numbering) -> str:
    return f"{numbering.name} gives it the pull request's number when the pull request is pushed."


def check_entry(
    entry: Entry,
    cfg: FragmentConfig,
    settings: NewsSettings,
    *,
    content: bool = True,
    numbering: Numbering | None = None,
) -> list[Violation]:
    """Violations for one item of the fragment directory (exempt names are the caller's business);
    `numbering`: the workflow that numbers placeholders, so they need no action from the
    contributor."""
    path = f"{cfg.directory}/{entry.name}"
    loc = Location(path)
    if entry.kind != "file":
        what = {"symlink": "a symlink", "dir": "a directory"}.get(entry.kind, "not a regular file")
        return [
            violation(
                "NF010",
                f"`{path}` is {what}",
                loc,
                "Keep only regular fragment files in the directory.",
                context=entry.name,
            )
        ]
    parsed = parse_name(entry.name, cfg)
    if not isinstance(parsed, FragmentName):
        code, message, hint = parsed
        return [violation(code, message, loc, hint, context=entry.name)]
    out: list[Violation] = []
    if parsed.placeholder:
        sev = WARNING if settings.allow_placeholders else ERROR
        out.append(
            violation(
                "NF003",
                f"`{entry.name}` has no number yet",
                loc,
                assigned_hint(numbering)
                if numbering
                else "Run `devkit news assign <PR number>` once the pull request exists.",
                sev,
                entry.name,
            )
        )
    if content and entry.data is not None:
        out += check_content(path, entry.data, settings)
    return out


def check_content(path: str, data: bytes, settings: NewsSettings) -> list[Violation]:
    name = path.rsplit("/", 1)[-1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [
            violation(
                "NF009",
                f"`{path}` is not valid UTF-8 (byte {exc.start})",
                Location(path),
                "Save the file as UTF-8.",
                context=name,
            )
        ]
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return [
            violation(
                "NF004",
                f"`{path}` is empty",
                Location(path),
                "Write one line that tells users what changed.",
                context=name,
            )
        ]
    out: list[Violation] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines, start=1):
        col = line.find(TEMPLATE_TEXT)
        if col >= 0:
            out.append(
                violation(
                    "NF005",
                    f"`{path}` still has towncrier's placeholder text",
                    Location(path, i, col + 1),
                    "Replace it with what changed, for users.",
                    context=name,
                )
            )
    if settings.single_line:
        content_lines = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
        problem = ""
        if len(content_lines) > 1:
            problem, at = f"has {len(content_lines)} lines", content_lines[1][0]
        elif _sentences(content_lines[0][1]) > 1:
            problem, at = "has more than one sentence", content_lines[0][0]
        if problem:
            out.append(
                violation(
                    "NF006",
                    f"`{path}` {problem}; this project wants one",
                    Location(path, at, 1),
                    "Keep one sentence here; put details in the pull request.",
                    context=name,
                )
            )
    if not text.endswith("\n"):
        out.append(
            violation(
                "NF007",
                f"`{path}` does not end with a newline",
                Location(path, len(lines), len(lines[-1]) + 1),
                "Add a newline at the end of the file.",
                context=name,
            )
        )
    return out


def check_added(
    added: list[str],
    cfg: FragmentConfig,
    settings: NewsSettings,
    pr: int | None,
    numbering: Numbering | None = None,
    pull: PullFacts = NO_FACTS,
) -> list[Violation]:
    """Branch-level rules over the fragment names the branch adds, for pull request `pr`: a workflow
    that numbers fragments (`numbering`) fixes what it renames, except in a fork's pull request; a
    backport keeps the numbers of the pull request it backports."""
    out: list[Violation] = []
    fragments = []
    for name in added:
        if is_exempt(name, cfg, settings):
            continue
        parsed = parse_name(name, cfg)
        if isinstance(parsed, FragmentName):
            fragments.append((name, parsed))
    if not fragments and settings.require:
        kind = next(
            (t for t in ("feature", "fix", "bugfix") if t in cfg.types),
            cfg.types[0] if cfg.types else "fix",
        )
        example = canonical(str(pr) if pr else "<PR>", kind, cfg)
        out.append(
            violation(
                "NF011",
                f"this branch adds no news fragment to `{cfg.directory}/`",
                Location(cfg.directory),
                f'Add one, e.g. `devkit news new {kind} "..."{f" --pr {pr}" if pr else ""}` '
                f"(writes `{cfg.directory}/{example}`).",
            )
        )
    if pr is None:
        return out
    workflow = numbering if numbering and not pull.fork else None
    for name, parsed in fragments:
        if parsed.number == str(pr) or parsed.number in pull.originals:
            continue
        if parsed.placeholder and workflow:
            continue  # NF003 says which workflow numbers it
        out.append(_misnumbered(name, parsed, cfg, pr, numbering, pull))
    return out


def _misnumbered(
    name: str,
    parsed: FragmentName,
    cfg: FragmentConfig,
    pr: int,
    numbering: Numbering | None,
    pull: PullFacts,
) -> Violation:
    """NF008 for an added fragment without the pull request's number: a warning when the numbering
    workflow renames it, else an error with the exact rename."""
    path = f"{cfg.directory}/{name}"
    target = f"{cfg.directory}/{canonical(str(pr), parsed.type, cfg, parsed.counter)}"
    rename = f"`git mv {path} {target}`"
    if parsed.placeholder:
        if pull.fork and numbering:
            why = f"the pull request comes from a fork, and {numbering.name} numbers only this repository's branches"
        else:
            why = "no workflow of this repository numbers fragments"
        message = f"`{path}` has no number, and nothing will give it one: {why}"
        hint = f"Rename it: {rename} (or `devkit news assign {pr}`)."
        return violation("NF008", message, Location(path), hint, context=name)
    message = f"`{path}` is numbered `{parsed.number}`, not the pull request #{pr}"
    renamed = numbering and not pull.fork and pull.base in numbering.renumbers
    if renamed:
        hint = f"{numbering.name} renames it to `{target}` when the pull request is pushed."
        return violation("NF008", message, Location(path), hint, WARNING, name)
    return violation("NF008", message, Location(path), f"Rename it: {rename}.", context=name)


def check_duplicates(names: list[str], cfg: FragmentConfig) -> list[Violation]:
    """Names towncrier reads as one fragment (`7.fix.md` and `007.fix.md`: issue 7, fix, counter 0):
    its build fails on them."""
    seen: dict[tuple[str, str, int], str] = {}
    out = []
    for name in names:
        parsed = parse_name(name, cfg)
        if not isinstance(parsed, FragmentName) or not parsed.number:
            continue
        key = (parsed.number, parsed.type, parsed.counter)
        if key in seen:
            path = f"{cfg.directory}/{name}"
            free = canonical(parsed.number, parsed.type, cfg, parsed.counter + 1)
            out.append(
                violation(
                    "NF001",
                    f"`{name}` and `{seen[key]}` are the same fragment for towncrier "
                    f"(number {parsed.number}, type {parsed.type}): its build fails",
                    Location(path),
                    f"Merge the two, or rename `{name}` to `{free}`.",
                    context=name,
                )
            )
        else:
            seen[key] = name
    return out
