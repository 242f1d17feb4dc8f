"""Commit-message rules: a parsed message and the settings in, violations out.

Each rule is a function `(msg, settings, said) -> list[Violation]` for the codes it owns (the rule
registry, registry.py, explains each code with examples); `check_message` runs HEADER_RULES, then
BODY_RULES, in order. `said` makes a violation at a line of the message (and knows its author).
"""

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
from devkit.record import TYPE_CHECKING, Record
from devkit.violations import ERROR, WARNING, Location, Violation

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Rule = Callable[[Message, CommitSettings, "Said"], list[Violation]]

_BREAKING_LIKE = r"^(?P<tok>breaking[ _-]?changes?)\s*(?P<sep>:?)\s?(?P<rest>.*)$"
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WORD_CHARS = _ASCII_LETTERS | frozenset("0123456789")


def _breaking_like(line: str) -> tuple[str, str, str] | None:
    """(token, separator, rest) of `BREAKING CHANGE`-like text at the start of a line, in any case
    or spelling: what _BREAKING_LIKE matches. An ASCII token is read by hand (a range check then
    never imports `re`); any other goes to the pattern, for re's Unicode case rules."""
    if line[:8].lower() != "breaking":
        return None
    if not line[:16].isascii():
        m = regex().match(_BREAKING_LIKE, line, regex().I)
        return (m["tok"], m["sep"], m["rest"]) if m else None
    end = 9 if line[8:9] in (" ", "_", "-") else 8
    if line[end : end + 6].lower() != "change":
        return None
    end += 7 if line[end + 6 : end + 7] in ("s", "S") else 6
    at = end
    while at < len(line) and line[at].isspace():  # \s*, as re has it: str.isspace()
        at += 1
    sep = ":" if line[at : at + 1] == ":" else ""
    at += len(sep)
    if line[at : at + 1].isspace():  # \s?
        at += 1
    return line[:end], sep, line[at:]


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


# a list setting in lower case, made once per list: a range check asks for every commit
_LOWERED: dict[tuple[str, ...], frozenset[str]] = {}


def _matches(value: str, allowed: Pattern, ignore_case: bool) -> bool:
    if isinstance(allowed, str):
        return _fullmatch(allowed, value, regex().I if ignore_case else 0)
    if not allowed:
        return True
    if ignore_case:
        lowered = _LOWERED.get(allowed)
        if lowered is None:
            lowered = _LOWERED[allowed] = frozenset(a.lower() for a in allowed)
        return value.lower() in lowered
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


class Said(Record):
    """How a rule says something: a violation at line `index` of the message (column `col`)."""

    numbers: Sequence[int]  # each message line's line number in the original
    file: str
    commit: str
    context: str  # the header, shown with a commit's violations
    author: str  # the commit's author (bots are exempt from line lengths)

    def __call__(
        self, code: str, message: str, index: int = 0, col: int = 0, hint: str = "", sev: str = ""
    ) -> Violation:
        line = self.numbers[index] if 0 <= index < len(self.numbers) else 0
        where = Location(self.file, line, col, self.commit)
        return violation(code, message, where, hint, sev or ERROR, self.context)


# --- the header ---------------------------------------------------------------------------------


def header_format(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM002: `<type>[(scope)][!]: <description>`; a lenient project's CI accepts near misses."""
    if not msg.header.error:
        return []
    col, message, hint = msg.header.error
    strict = not (msg.header.lenient and s.lenient_header)
    return [said("CM002", message, 0, col, hint, ERROR if strict else WARNING)]


def header_type(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM003 a type the project allows; CM004 in lower case."""
    t = msg.header.type
    if not _matches(t, s.types, ignore_case=True):
        guess = did_you_mean(t, s.types) if isinstance(s.types, tuple) else ""
        hint = f"Did you mean `{guess}`?" if guess else f"Use one of {_describe(s.types)}."
        return [
            said("CM003", f"type `{t}` is not allowed; allowed: {_describe(s.types)}", 0, 1, hint)
        ]
    if s.type_case == "lower" and t != t.lower():
        return [said("CM004", f"type `{t}` must be lower-case", 0, 1, f"Write `{t.lower()}`.")]
    return []


def header_scope(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM005 scopes the project allows; CM006 a scope where one is required; CM007 none empty."""
    h = msg.header
    if h.scope is None:
        if not s.scope_required:
            return []
        return [
            said(
                "CM006",
                "the header has no scope",
                0,
                len(h.type) + 1,
                f"Write `{h.type}(<scope>): ...`.",
            )
        ]
    if not visible(h.scope):
        return [
            said(
                "CM007",
                "the scope in `()` is empty",
                0,
                h.scope_col,
                "Remove the `()` or name a scope.",
            )
        ]
    sep = s.scope_delimiter
    parts = [p.strip() for p in h.scope.split(sep)] if sep else [h.scope]
    if not (s.scopes or s.scope_patterns or s.scope_dirs) and all(map(visible, parts)):
        return []  # any scope is allowed, and none is empty
    out = []
    if any(not visible(part) for part in parts):
        hint = f"Write `{sep}`-separated names, e.g. `fix(api{sep}cli): ...`."
        out.append(
            said("CM007", f"the scope list `{h.scope}` has an empty entry", 0, h.scope_col, hint)
        )
    for part in (p for p in parts if visible(p) and not _scope_allowed(p, s)):
        allowed, guess = _describe_scopes(s), _scope_guess(part, s)
        hint = f"Did you mean `{guess}`?" if guess else f"Use {allowed}."
        out.append(
            said(
                "CM005", f"scope `{part}` is not allowed; allowed: {allowed}", 0, h.scope_col, hint
            )
        )
    return out


def breaking_marker(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM008: a project may forbid the `!` marker (the footer says it instead)."""
    if not msg.header.breaking or s.allow_breaking_marker:
        return []
    col = msg.lines[0].index("!:") + 1
    hint = "Drop the `!` and describe the break in a `BREAKING CHANGE:` footer."
    return [
        said("CM008", "the `!` breaking-change marker is not allowed in this project", 0, col, hint)
    ]


def _description(msg: Message, s: CommitSettings) -> tuple[str, str]:
    """The description and the header as the limits count them (a squash's ` (#123)` left out)."""
    desc, header = msg.header.description, msg.lines[0]
    if s.squash_suffix and without_squash_suffix(desc) != desc:
        return without_squash_suffix(desc), without_squash_suffix(header)
    return desc, header


def header_length(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM009: the header fits the project's limit."""
    _, counted = _description(msg, s)
    limit = s.header_max_length
    if not limit or len(counted) <= limit:
        return []
    hint = "Shorten the description; details go in the body."
    return [
        said("CM009", f"the header is {len(counted)} characters, limit {limit}", 0, limit + 1, hint)
    ]


def subject_case(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM010: the description starts in the project's case (names and acronyms keep theirs)."""
    desc, _ = _description(msg, s)
    first, col = desc[:1], msg.header.description_col
    if s.subject_case == "lower" and first.isupper() and not _first_word_is_name(desc):
        message, fixed = "the description must start with a lower-case letter", first.lower()
    elif s.subject_case == "upper" and first.islower():
        message, fixed = "the description must start with an upper-case letter", first.upper()
    else:
        return []
    return [said("CM010", message, 0, col, f"Write `{fixed}{desc[1:]}`.")]


def subject_full_stop(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM011: no full stop at the end of the description (an ellipsis is fine)."""
    desc, _ = _description(msg, s)
    if s.subject_full_stop or not desc.endswith(".") or desc.endswith(".."):
        return []
    col = msg.header.description_col + len(desc) - 1
    return [
        said("CM011", "the description ends with a full stop", 0, col, "Remove the trailing `.`.")
    ]


# --- the body and the footers -------------------------------------------------------------------


def body_separated(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM012: a blank line between the header and the body."""
    if len(msg.lines) < 2 or not msg.lines[1]:
        return []
    message = "the body must be separated from the header by a blank line"
    return [said("CM012", message, 1, 1, "Insert an empty line after the header.")]


def footer_separated(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM013: footers written straight under the body (no blank line) are body text by the spec."""
    lines = msg.lines
    if msg.footer_start != len(lines) or len(lines) <= 2:
        return []
    last_para = len(lines) - 1
    while last_para > 0 and lines[last_para - 1]:
        last_para -= 1
    tail = len(lines)
    while tail > last_para + 1 and footer_match(lines[tail - 1]):
        tail -= 1
    if tail == len(lines) or last_para <= 1 or footer_match(lines[last_para]):
        return []
    token = lines[tail].split(":", 1)[0].split(" #", 1)[0]
    message = f"the footer `{token}` must be separated from the body by a blank line"
    return [said("CM013", message, tail, 1, "Insert an empty line before the footers.")]


def _breaking_footer(line: str, i: int, lines: list[str], said: Said) -> Violation | None:
    """CM014 or CM015 for one `BREAKING CHANGE`-like line, None when it is right."""
    m = _breaking_like(line)
    if not m:
        return None
    tok, sep, rest = m
    spec = tok in ("BREAKING CHANGE", "BREAKING-CHANGE")
    if spec and line.startswith(f"{tok} #"):
        # a trailer form git accepts, but the spec's breaking change is `<token>: <description>`
        return said(
            "CM014",
            f"`{tok} #` is not a breaking-change footer: it must be written `{tok}: <description>`",
            i,
            len(tok) + 1,
            f"Describe the break after `{tok}: `; refer to an issue in a footer of its own, "
            f"e.g. `Refs #{rest.removeprefix('#')}`.",
        )
    if spec and sep == ":" and (line.startswith(f"{tok}: ") or line == f"{tok}:"):
        # `BREAKING CHANGE: text`, or `BREAKING CHANGE:` with the text on the next lines (rule 10)
        continued = i + 1 < len(lines) and lines[i + 1] and not footer_match(lines[i + 1])
        if rest.strip() or continued:
            return None
        hint = "Describe the break after `BREAKING CHANGE: `."
        return said(
            "CM015", "`BREAKING CHANGE:` needs a description of what breaks", i, len(tok) + 2, hint
        )
    if not (sep or tok.upper().replace("_", " ") in ("BREAKING CHANGE", "BREAKING-CHANGE")):
        return None
    if spec and sep == ":" and not rest.strip():
        hint = f"Describe the break after `{tok}: `."
        return said("CM015", f"`{tok}:` needs a description of what breaks", i, len(tok) + 2, hint)
    if not sep:
        return None
    fixed = "BREAKING-CHANGE" if "-" in tok else "BREAKING CHANGE"
    message = f"`{tok}{sep}` must be written `{fixed}: ` (upper case, colon, space)"
    return said("CM014", message, i, 1, f"Write `{fixed}: {rest}`.")


def breaking_footers(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM014 a breaking change written as the spec spells it; CM015 with a description."""
    lines = msg.lines
    found = (
        _breaking_footer(lines[i], i, lines, said)
        for i in range(1, len(lines))
        if lines[i][:1] in ("b", "B")  # what _breaking_like looks for, asked cheaply first
    )
    return [x for x in found if x is not None]


def footer_tokens(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM016: a footer's token has no spaces (`Reviewed-by:`), `BREAKING CHANGE` alone excepted."""
    lines, trailers = msg.lines, msg.footer_start
    if trailers == len(lines):
        # no valid trailer: a last paragraph made only of trailer-like lines (`Reviewed by: Z`) is one
        last = len(lines) - 1
        while last > 0 and lines[last - 1]:
            last -= 1
        para = lines[last:]
        if last >= 2 and all(
            footer_match(x) or _breaking_like(x) or _spaced_token(x) for x in para
        ):
            trailers = last
    out = []
    for i in range(trailers, len(lines)):
        if footer_match(lines[i]) or _breaking_like(lines[i]):
            continue
        tok = _spaced_token(lines[i])
        if tok:
            hint = f"Write `{tok.replace(' ', '-')}:`; only `BREAKING CHANGE` may contain a space."
            out.append(said("CM016", f"footer token `{tok}` contains spaces", i, 1, hint))
    return out


def body_line_length(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM017: body lines fit the project's limit (a line with a URL, and bots, are exempt)."""
    limit = s.body_max_line_length
    if not limit or _is_bot(said.author):
        return []
    lines = msg.lines
    return [
        said(
            "CM017",
            f"body line is {len(lines[i])} characters, limit {limit}",
            i,
            limit + 1,
            "Wrap the body; lines with a URL are exempt.",
        )
        for i in range(2, min(msg.footer_start, len(lines)))
        if len(lines[i]) > limit and "http://" not in lines[i] and "https://" not in lines[i]
    ]


def required_trailers(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM018: the trailers the project requires are there."""
    tokens = {f.token.lower() for f in msg.footers}
    return [
        said(
            "CM018",
            f"the `{t}:` trailer is required",
            len(msg.lines) - 1,
            0,
            f"Add `{t}: ...` in the footers (after a blank line).",
        )
        for t in s.required_trailers
        if t.lower() not in tokens
    ]


def forbidden_trailers(msg: Message, s: CommitSettings, said: Said) -> list[Violation]:
    """CM019: no trailer the project forbids."""
    banned = {t.lower() for t in s.forbidden_trailers}
    return [
        said(
            "CM019",
            f"the `{f.token}` trailer is not allowed",
            f.line - 1,
            1,
            f"Remove the `{f.token}` line.",
        )
        for f in msg.footers
        if f.token.lower() in banned
    ]


HEADER_RULES: tuple[Rule, ...] = (
    header_type,
    header_scope,
    breaking_marker,
    header_length,
    subject_case,
    subject_full_stop,
)
BODY_RULES: tuple[Rule, ...] = (
    body_separated,
    footer_separated,
    breaking_footers,
    footer_tokens,
    body_line_length,
    required_trailers,
    forbidden_trailers,
)


# --- one message ---------------------------------------------------------------------------------


def check_message(
    lines: list[str],
    settings: CommitSettings,
    *,
    numbers: list[int] | range | None = None,
    parents: int | None = None,
    file: str = "",
    commit: str = "",
    author: str = "",
) -> list[Violation]:
    """Check one cleaned-up message. `numbers` maps each line to its line in the original file;
    `parents` is set in range mode (merges are decided by it); `author` exempts bots from line lengths."""
    if numbers is None:
        numbers = list(range(1, len(lines) + 1))
    said = Said(numbers, file, commit, lines[0] if lines else "", author)
    if not lines:
        return [
            said(
                "CM001",
                "the commit message is empty",
                hint="Write a header such as `fix: correct the typo`.",
            )
        ]
    special = _special(lines, parents, settings, said)
    if special is not None:
        return special
    msg = parse(lines)
    rules_of = _active(settings)
    out = header_format(msg, settings, said)
    # a header that is not one: nothing else about it to check
    whole = not out or out[0].severity != ERROR
    rules = (
        (rules_of[0] if whole else rules_of[2])
        if len(lines) > 1
        else (rules_of[1] if whole else rules_of[3])
    )
    for rule in rules:  # a plain loop: most rules find nothing, and a comprehension costs a call
        found = rule(msg, settings, said)
        if found:
            out += found
    return out


# (the settings, their rules): a range check runs the rules once per commit, under one settings
_last_active: list[tuple[CommitSettings, tuple[tuple[Rule, ...], ...]]] = []


def _active(s: CommitSettings) -> tuple[tuple[Rule, ...], ...]:
    """The rules that can find something under these settings, in their order, for (a message, a
    one-line message, a message whose header does not parse, such a one-line message). A limit,
    case or trailer list the project does not set cannot be broken, and a message without a body
    has only its required trailers to miss."""
    if _last_active and _last_active[0][0] is s:
        return _last_active[0][1]
    idle: set[Rule] = set()
    if s.allow_breaking_marker:
        idle.add(breaking_marker)
    if not s.header_max_length:
        idle.add(header_length)
    if s.subject_case == "any":
        idle.add(subject_case)
    if s.subject_full_stop:
        idle.add(subject_full_stop)
    if not s.body_max_line_length:
        idle.add(body_line_length)
    if not s.required_trailers:
        idle.add(required_trailers)
    if not s.forbidden_trailers:
        idle.add(forbidden_trailers)
    header = tuple(r for r in HEADER_RULES if r not in idle)
    body = tuple(r for r in BODY_RULES if r not in idle)
    one_line = tuple(r for r in body if r is required_trailers)
    rules = (header + body, header + one_line, body, one_line)
    _last_active[:] = [(s, rules)]
    return rules


def _special(
    lines: list[str], parents: int | None, s: CommitSettings, said: Said
) -> list[Violation] | None:
    """CM020 merges, CM021 git's reverts, CM022 fixup!/squash!/amend! commits: each the project
    allows or not, with nothing else checked; None for any other message."""
    kind = special_kind(lines, parents)
    if kind == "merge":
        if s.allow_merge_commits:
            return []
        hint = "Rebase onto the base branch instead of merging it in."
        return [said("CM020", "merge commits are not allowed in this project", hint=hint)]
    if kind == "revert":
        if s.allow_revert_commits:
            return []
        message = "git-generated revert commits are not allowed; write a `revert:` commit"
        hint = "Reword it as `revert: <original header>` with a `Refs: <sha>` footer."
        return [said("CM021", message, hint=hint)]
    if kind == "fixup":
        if s.allow_fixup_commits:
            return []
        message = f"`{lines[0].split('!', 1)[0]}!` commits must be squashed before merging"
        return [said("CM022", message, hint="Run `git rebase -i --autosquash <base>`.")]
    return None
