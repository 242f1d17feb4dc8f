"""Commit-message rules: a parsed message and the settings in, violations out."""

from __future__ import annotations

from devkit.conventions.message import (
    Message,
    footer_match,
    parse,
    regex,
    special_kind,
    visible,
    without_squash_suffix,
)
from devkit.conventions.settings import MATCH_LIMIT, CommitSettings, Pattern
from devkit.conventions.verdict import did_you_mean, violation
from devkit.record import TYPE_CHECKING
from devkit.violations import ERROR, WARNING, Location, Violation

if TYPE_CHECKING:
    import re

_BREAKING_LIKE = r"^(?P<tok>breaking[ _-]?changes?)\s*(?P<sep>:?)\s?(?P<rest>.*)$"
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WORD_CHARS = _ASCII_LETTERS | frozenset("0123456789")


def _breaking_like(line: str) -> re.Match[str] | None:
    """`BREAKING CHANGE`-like text at the start of a line, in any case or spelling (only lines that
    start with "breaking" compile the pattern)."""
    if line[:8].lower() != "breaking":
        return None
    return regex().match(_BREAKING_LIKE, line, regex().I)


def _spaced_token(line: str) -> str:
    """The token of a trailer-like line whose token has spaces (`Reviewed by: Z`): two or three
    ASCII words, `: `, then text; "" for any other line."""
    token, sep, rest = line.partition(": ")
    words = token.split(" ")
    if not sep or not rest[:1] or rest[0].isspace() or not 2 <= len(words) <= 3:
        return ""
    ok = all(w and w[0] in _ASCII_LETTERS and _WORD_CHARS.issuperset(w) for w in words)
    return token if ok else ""


def _is_bot(author: str) -> bool:
    """Bots' commits are exempt from line lengths (dependabot, renovate, `name[bot]`)."""
    lowered = author.lower()
    return "[bot]" in lowered or lowered.startswith(("dependabot", "renovate"))


def _fullmatch(pattern: str, value: str, flags: int = 0) -> bool:
    """A project's regex over value; a value longer than MATCH_LIMIT never matches."""
    return len(value) <= MATCH_LIMIT and regex().fullmatch(pattern, value, flags) is not None


def _matches(value: str, allowed: Pattern, ignore_case: bool) -> bool:
    if isinstance(allowed, str):
        return _fullmatch(allowed, value, regex().I if ignore_case else 0)
    if not allowed:
        return True
    if ignore_case:
        return value.lower() in (a.lower() for a in allowed)
    return value in allowed


def _describe(allowed: Pattern) -> str:
    if isinstance(allowed, str):
        return f"the pattern `{allowed}`"
    return ", ".join(f"`{a}`" for a in allowed)


def _scope_allowed(part: str, s: CommitSettings) -> bool:
    if not (s.scopes or s.scope_patterns or s.scope_dirs):
        return True  # nothing configured: any scope
    if s.scopes and _matches(part, s.scopes, ignore_case=True):
        return True
    if part in s.folder_scopes:
        return True
    return any(_fullmatch(p, part) for p in s.scope_patterns)


def _describe_scopes(s: CommitSettings) -> str:
    described = [_describe(s.scopes)] if s.scopes else []
    if s.folder_scopes:
        described.append("the folders " + ", ".join(f"`{n}`" for n in s.folder_scopes))
    elif s.scope_dirs:
        described.append("the folders of " + ", ".join(f"`{d}`" for d in s.scope_dirs))
    described += [f"the pattern `{p}`" for p in s.scope_patterns]
    return "; ".join(described)


def _scope_guess(part: str, s: CommitSettings) -> str:
    """A near-miss name, or the scope without its stray whitespace when that is allowed."""
    squeezed = "".join(part.split())
    if squeezed != part and _scope_allowed(squeezed, s):
        return squeezed
    names = (*(s.scopes if isinstance(s.scopes, tuple) else ()), *s.folder_scopes)
    return did_you_mean(part, names)


def _first_word_is_name(desc: str) -> bool:
    """Acronyms and names (API, GraphQL, iOS, README) keep their case under subject-case."""
    word = desc.split(" ", 1)[0]
    return any(c.isupper() for c in word[1:]) or any(c.isdigit() for c in word)


def check_message(
    lines: list[str],
    settings: CommitSettings,
    *,
    numbers: list[int] | None = None,
    parents: int | None = None,
    file: str = "",
    commit: str = "",
    author: str = "",
) -> list[Violation]:
    """Check one cleaned-up message. `numbers` maps each line to its line in the original file;
    `parents` is set in range mode (merges are decided by it); `author` exempts bots from line lengths."""
    if numbers is None:
        numbers = list(range(1, len(lines) + 1))
    context = lines[0] if lines else ""

    def loc(index: int, col: int = 0) -> Location:
        line = numbers[index] if 0 <= index < len(numbers) else 0
        return Location(file, line, col, commit)

    def v(
        code: str, message: str, index: int = 0, col: int = 0, hint: str = "", severity: str = ""
    ) -> Violation:
        return violation(code, message, loc(index, col), hint, severity or ERROR, context)

    if not lines:
        return [
            v(
                "CM001",
                "the commit message is empty",
                hint="Write a header such as `fix: correct the typo`.",
            )
        ]

    kind = special_kind(lines, parents)
    if kind == "merge":
        if settings.allow_merge_commits:
            return []
        return [
            v(
                "CM020",
                "merge commits are not allowed in this project",
                hint="Rebase onto the base branch instead of merging it in.",
            )
        ]
    if kind == "revert":
        if settings.allow_revert_commits:
            return []
        return [
            v(
                "CM021",
                "git-generated revert commits are not allowed; write a `revert:` commit",
                hint="Reword it as `revert: <original header>` with a `Refs: <sha>` footer.",
            )
        ]
    if kind == "fixup":
        if settings.allow_fixup_commits:
            return []
        return [
            v(
                "CM022",
                f"`{lines[0].split('!', 1)[0]}!` commits must be squashed before merging",
                hint="Run `git rebase -i --autosquash <base>`.",
            )
        ]

    msg = parse(lines)
    out: list[Violation] = []
    out += _header_rules(msg, settings, v)
    out += _body_rules(msg, settings, v, author)
    return out


def _header_rules(msg: Message, s: CommitSettings, v) -> list[Violation]:  # type: ignore[no-untyped-def]
    h = msg.header
    header = msg.lines[0]
    out: list[Violation] = []
    if h.error:
        col, message, hint = h.error
        if not (h.lenient and s.lenient_header):
            return [v("CM002", message, 0, col, hint)]
        # the project's CI accepts it: say what the convention is, then check the rest
        out.append(v("CM002", message, 0, col, hint, WARNING))
    if not _matches(h.type, s.types, ignore_case=True):
        guess = did_you_mean(h.type, s.types) if isinstance(s.types, tuple) else ""
        hint = f"Did you mean `{guess}`?" if guess else f"Use one of {_describe(s.types)}."
        out.append(
            v("CM003", f"type `{h.type}` is not allowed; allowed: {_describe(s.types)}", 0, 1, hint)
        )
    elif s.type_case == "lower" and h.type != h.type.lower():
        out.append(
            v("CM004", f"type `{h.type}` must be lower-case", 0, 1, f"Write `{h.type.lower()}`.")
        )
    if h.scope is not None:
        if not visible(h.scope):
            out.append(
                v(
                    "CM007",
                    "the scope in `()` is empty",
                    0,
                    h.scope_col,
                    "Remove the `()` or name a scope.",
                )
            )
        else:
            parts = (
                [h.scope]
                if not s.scope_delimiter
                else [p.strip() for p in h.scope.split(s.scope_delimiter)]
            )
            if any(not visible(part) for part in parts):
                out.append(
                    v(
                        "CM007",
                        f"the scope list `{h.scope}` has an empty entry",
                        0,
                        h.scope_col,
                        f"Write `{s.scope_delimiter}`-separated names, e.g. `fix(api{s.scope_delimiter}cli): ...`.",
                    )
                )
            for part in (p for p in parts if visible(p)):
                if not _scope_allowed(part, s):
                    allowed = _describe_scopes(s)
                    guess = _scope_guess(part, s)
                    hint = f"Did you mean `{guess}`?" if guess else f"Use {allowed}."
                    out.append(
                        v(
                            "CM005",
                            f"scope `{part}` is not allowed; allowed: {allowed}",
                            0,
                            h.scope_col,
                            hint,
                        )
                    )
    elif s.scope_required:
        out.append(
            v(
                "CM006",
                "the header has no scope",
                0,
                len(h.type) + 1,
                f"Write `{h.type}(<scope>): ...`.",
            )
        )
    if h.breaking and not s.allow_breaking_marker:
        col = header.index("!:") + 1
        out.append(
            v(
                "CM008",
                "the `!` breaking-change marker is not allowed in this project",
                0,
                col,
                "Drop the `!` and describe the break in a `BREAKING CHANGE:` footer.",
            )
        )
    desc = h.description
    counted = header
    if s.squash_suffix and without_squash_suffix(desc) != desc:
        desc = without_squash_suffix(desc)
        counted = without_squash_suffix(header)
    if s.header_max_length and len(counted) > s.header_max_length:
        out.append(
            v(
                "CM009",
                f"the header is {len(counted)} characters, limit {s.header_max_length}",
                0,
                s.header_max_length + 1,
                "Shorten the description; details go in the body.",
            )
        )
    first = desc[:1]
    if s.subject_case == "lower" and first.isupper() and not _first_word_is_name(desc):
        out.append(
            v(
                "CM010",
                "the description must start with a lower-case letter",
                0,
                h.description_col,
                f"Write `{first.lower()}{desc[1:]}`.",
            )
        )
    elif s.subject_case == "upper" and first.islower():
        out.append(
            v(
                "CM010",
                "the description must start with an upper-case letter",
                0,
                h.description_col,
                f"Write `{first.upper()}{desc[1:]}`.",
            )
        )
    if not s.subject_full_stop and desc.endswith(".") and not desc.endswith(".."):
        out.append(
            v(
                "CM011",
                "the description ends with a full stop",
                0,
                h.description_col + len(desc) - 1,
                "Remove the trailing `.`.",
            )
        )
    return out


def _body_rules(msg: Message, s: CommitSettings, v, author: str) -> list[Violation]:  # type: ignore[no-untyped-def]
    lines = msg.lines
    out: list[Violation] = []
    if len(lines) > 1 and lines[1]:
        out.append(
            v(
                "CM012",
                "the body must be separated from the header by a blank line",
                1,
                1,
                "Insert an empty line after the header.",
            )
        )
    footer_start = msg.footer_start
    # footers written straight under the body (no blank line) are body text by the spec
    if footer_start == len(lines) and len(lines) > 2:
        last_para = len(lines) - 1
        while last_para > 0 and lines[last_para - 1]:
            last_para -= 1
        tail = len(lines)
        while tail > last_para + 1 and footer_match(lines[tail - 1]):
            tail -= 1
        if tail < len(lines) and last_para > 1 and not footer_match(lines[last_para]):
            out.append(
                v(
                    "CM013",
                    f"the footer `{lines[tail].split(':', 1)[0].split(' #', 1)[0]}` must be separated "
                    "from the body by a blank line",
                    tail,
                    1,
                    "Insert an empty line before the footers.",
                )
            )
    for i in range(1, len(lines)):
        m = _breaking_like(lines[i])
        if not m:
            continue
        tok, sep, rest = m["tok"], m["sep"], m["rest"]
        # `BREAKING CHANGE: text`, or `BREAKING CHANGE:` with the text on the next lines (rule 10)
        exact = (
            tok in ("BREAKING CHANGE", "BREAKING-CHANGE")
            and sep == ":"
            and (lines[i].startswith(f"{tok}: ") or lines[i] == f"{tok}:")
        )
        if tok in ("BREAKING CHANGE", "BREAKING-CHANGE") and lines[i].startswith(f"{tok} #"):
            # a trailer form git accepts, but the spec's breaking change is `<token>: <description>`
            out.append(
                v(
                    "CM014",
                    f"`{tok} #` is not a breaking-change footer: it must be written "
                    f"`{tok}: <description>`",
                    i,
                    len(tok) + 1,
                    f"Describe the break after `{tok}: `; refer to an issue in a footer of its own, "
                    f"e.g. `Refs #{rest.removeprefix('#')}`.",
                )
            )
            continue
        if exact:
            continued = i + 1 < len(lines) and lines[i + 1] and not footer_match(lines[i + 1])
            if not rest.strip() and not continued:
                out.append(
                    v(
                        "CM015",
                        "`BREAKING CHANGE:` needs a description of what breaks",
                        i,
                        len(tok) + 2,
                        "Describe the break after `BREAKING CHANGE: `.",
                    )
                )
            continue
        if sep or tok.upper().replace("_", " ") in ("BREAKING CHANGE", "BREAKING-CHANGE"):
            if tok in ("BREAKING CHANGE", "BREAKING-CHANGE") and sep == ":" and not rest.strip():
                out.append(
                    v(
                        "CM015",
                        f"`{tok}:` needs a description of what breaks",
                        i,
                        len(tok) + 2,
                        f"Describe the break after `{tok}: `.",
                    )
                )
            elif sep:
                fixed = "BREAKING-CHANGE" if "-" in tok else "BREAKING CHANGE"
                out.append(
                    v(
                        "CM014",
                        f"`{tok}{sep}` must be written `{fixed}: ` (upper case, colon, space)",
                        i,
                        1,
                        f"Write `{fixed}: {rest}`.",
                    )
                )
    trailers = footer_start
    if footer_start == len(lines):
        # no valid trailer: a last paragraph made only of trailer-like lines (`Reviewed by: Z`) is one
        last = len(lines) - 1
        while last > 0 and lines[last - 1]:
            last -= 1
        para = lines[last:]
        if last >= 2 and all(
            footer_match(x) or _breaking_like(x) or _spaced_token(x) for x in para
        ):
            trailers = last
    if trailers < len(lines):
        for i in range(trailers, len(lines)):
            line = lines[i]
            if footer_match(line) or _breaking_like(line):
                continue
            tok = _spaced_token(line)
            if tok:
                out.append(
                    v(
                        "CM016",
                        f"footer token `{tok}` contains spaces",
                        i,
                        1,
                        f"Write `{tok.replace(' ', '-')}:`; only `BREAKING CHANGE` may contain a space.",
                    )
                )
    if s.body_max_line_length and not _is_bot(author):
        for i in range(2, min(footer_start, len(lines))):
            line = lines[i]
            if (
                len(line) > s.body_max_line_length
                and "http://" not in line
                and "https://" not in line
            ):
                out.append(
                    v(
                        "CM017",
                        f"body line is {len(line)} characters, limit {s.body_max_line_length}",
                        i,
                        s.body_max_line_length + 1,
                        "Wrap the body; lines with a URL are exempt.",
                    )
                )
    tokens = {f.token.lower() for f in msg.footers}
    for t in s.required_trailers:
        if t.lower() not in tokens:
            out.append(
                v(
                    "CM018",
                    f"the `{t}:` trailer is required",
                    len(lines) - 1,
                    0,
                    f"Add `{t}: ...` in the footers (after a blank line).",
                )
            )
    for f in msg.footers:
        if f.token.lower() in (t.lower() for t in s.forbidden_trailers):
            out.append(
                v(
                    "CM019",
                    f"the `{f.token}` trailer is not allowed",
                    f.line - 1,
                    1,
                    f"Remove the `{f.token}` line.",
                )
            )
    return out
