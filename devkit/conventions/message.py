"""Git's message cleanup and the Conventional Commits parse of a commit message."""

from __future__ import annotations

from devkit.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from types import ModuleType

SCISSORS = "------------------------ >8 ------------------------"
# git's candidates for core.commentChar=auto (builtin/commit.c: adjust_comment_line_char)
AUTO_COMMENT_CANDIDATES = "#;@!$%^&|:"
AUTO_COMMENT_BYTES = frozenset(ch.encode() for ch in AUTO_COMMENT_CANDIDATES)

# patterns are strings: re compiles (and caches) each on first use, so a hook run pays only for
# the ones its message needs (the two every message needs are scanned by hand: compiling them cost
# a hook run ~0.4 ms)


def regex() -> ModuleType:
    """The `re` module, imported on first use: it costs a hook run about 4 ms (a fifth of it), and most
    messages need no pattern at all."""
    import re

    return re


def without_squash_suffix(text: str) -> str:
    """text without GitHub's squash-merge suffix ` (#123)`."""
    start = text.rfind(" (#")
    digits = text[start + 3 : -1]
    if start >= 0 and text.endswith(")") and digits.isascii() and digits.isdigit():
        return text[:start]
    return text


_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM_BYTES = frozenset(ch.encode() for ch in _ASCII_ALNUM)
_TOKEN_CHARS = _ASCII_ALNUM | {"-"}


def footer_match(line: str) -> tuple[str, str, str] | None:
    """(token, separator, value) of a git trailer line `Token: value` / `Token #value`; the token is
    `BREAKING CHANGE` or ASCII letters, digits and `-` (Conventional Commits rules 8-9, git's trailers)."""
    if line.startswith("BREAKING CHANGE") and line[15:17] in (": ", " #"):
        return "BREAKING CHANGE", line[15:17], line[17:]
    if not line or line[0] not in _ASCII_ALNUM:
        return None
    # the token ends at the first space or colon at the latest (neither is a token character)
    space, colon = line.find(" "), line.find(":")
    end = colon if space < 0 or 0 <= colon < space else space
    if end < 0:
        return None
    sep = line[end : end + 2]
    if sep not in (": ", " #") or not _TOKEN_CHARS.issuperset(line[:end]):
        return None
    return line[:end], sep, line[end + 2 :]


def visible(text: str) -> bool:
    """Whether text shows anything: not only spaces and zero-width or other invisible characters."""
    if text.lstrip()[:1] in _ASCII_ALNUM:  # most text starts so: asked first, cheaply
        return True
    return any(ch.isprintable() and not ch.isspace() for ch in text)


def _type_end(header: str) -> int:
    """Where the type at the start of the header ends: a letter or digit (any script: the spec names
    no character set), then letters, digits, `_` and `-`; 0 when there is none."""
    if not header or not header[0].isalnum():
        return 0
    # most types end at `:`, `(`, `!` or a space: a word of letters and digits up to the first
    cut = len(header)
    for ch in ":(! ":
        at = header.find(ch, 1, cut)
        if at >= 0:
            cut = at
    if header[:cut].isalnum():
        return cut
    end = 1
    while end < len(header) and (header[end].isalnum() or header[end] in "_-"):
        end += 1
    return end


class Header(Record):
    type: str = ""
    scope: str | None = None
    breaking: bool = False
    description: str = ""
    # set when the header does not parse: (column, message, hint); the other fields are then partial
    error: tuple[int, str, str] | None = None
    scope_col: int = 0
    description_col: int = 0
    # the error is only the spacing after the colon or an empty description: the fields are complete
    # (a project whose CI reads just the prefix, as Backend.AI's does, accepts such a header)
    lenient: bool = False


class Footer(Record):
    token: str
    separator: str
    value: str
    line: int  # 1-based line of the token


class Message(Record):
    lines: list[str] | tuple[str, ...]  # cleaned lines; lines[0] is the header
    header: Header
    footers: tuple[Footer, ...]
    footer_start: int  # 0-based index of the first footer line, len(lines) when there are none

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class DecodeFailure(ValueError):
    """Bytes git keeps in the message that devkit cannot take as text: not UTF-8, or a NUL byte.
    `offset` is 0-based in the original data, `line` 1-based."""

    def __init__(self, offset: int, line: int = 0, nul: bool = False) -> None:
        super().__init__("a NUL byte" if nul else f"byte {offset} is not valid UTF-8")
        self.offset = offset
        self.line = line
        self.nul = nul


# git's isspace() (ctype.c): space, tab, CR and LF only; never \v, \f or a Unicode space
GIT_SPACE = b" \t\r"
_SCISSORS = SCISSORS.encode()
_BOM = b"\xef\xbb\xbf"


class Cleaned(Record):
    """A message after git's clean-up, still bytes: what is left to decode and check."""

    lines: list[bytes]  # kept lines, trailing whitespace removed
    numbers: list[int]  # each one's 1-based line in the original
    starts: list[int]  # each one's byte offset in the original
    cut: bool = False  # the scissors line was found (everything below it was dropped)

    def text(self) -> tuple[list[str], list[int]]:
        """The kept lines as text (and their line numbers); DecodeFailure when git would keep a NUL
        byte or bytes that are not UTF-8."""
        joined = b"\n".join(self.lines)
        nul = joined.find(b"\0")
        if nul >= 0:
            raise self._failure(joined, nul, nul=True)
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._failure(joined, exc.start) from None
        return (text.split("\n") if self.lines else []), self.numbers

    def _failure(self, joined: bytes, at: int, nul: bool = False) -> DecodeFailure:
        index = joined.count(b"\n", 0, at)
        column = at - (joined.rfind(b"\n", 0, at) + 1)
        return DecodeFailure(self.starts[index] + column, self.numbers[index], nul)


def git_cleanup(data: bytes, comment: bytes | None = b"#") -> Cleaned:
    """git's `strip` clean-up of a message's bytes, before anything is decoded: the scissors line
    `<comment> ------------------------ >8 ------------------------` and all below it (`git commit -v`
    writes it; git cuts at it then, and devkit always: the hook cannot see -v), comment lines,
    trailing whitespace, and leading, trailing and repeated blank lines go (builtin/commit.c,
    wt_status_locate_end and strbuf_stripspace). comment=None keeps comment lines and the scissors
    (git's `whitespace` mode: -m text, and messages already in the repository). A UTF-8 BOM at the
    start is dropped (editors on Windows write one)."""
    comment = comment or None  # git refuses an empty comment string
    if comment is None:
        body = clean_already(data)
        if body is not None:
            lines = body.split(b"\n")
            return Cleaned(lines, list(range(1, len(lines) + 1)), _starts(lines))
    skip = len(_BOM) if data.startswith(_BOM) else 0
    scissors = comment + b" " + _SCISSORS if comment is not None else None
    kept: list[bytes] = []
    numbers: list[int] = []
    starts: list[int] = []
    cut = False
    pos = skip
    for number, line in enumerate(data[skip:].split(b"\n"), start=1):
        start, pos = pos, pos + len(line) + 1
        if comment is not None and line.startswith(comment):
            if line == scissors:  # the whole line, LF-ended (a CR or more text: only a comment)
                cut = True
                break
            continue
        line = line.rstrip(GIT_SPACE)
        if not line and (not kept or not kept[-1]):
            continue
        kept.append(line)
        numbers.append(number)
        starts.append(start)
    while kept and not kept[-1]:
        kept.pop()
        numbers.pop()
        starts.pop()
    return Cleaned(kept, numbers, starts, cut)


def clean_already(data: bytes) -> bytes | None:
    """A message that git's `whitespace` clean-up keeps line for line (most messages of a range: git
    cleaned them when they were committed), without its final newlines; else None. Such a message
    has no BOM, no blank line first, no whitespace ending a line and no two blank lines in a row."""
    if data.startswith((b"\n", _BOM)):
        return None
    body = data.rstrip(b"\n")
    if (
        not body
        or body[-1] in b" \t\r"
        or b" \n" in body
        or b"\t\n" in body
        or b"\r\n" in body
        or b"\n\n\n" in body
    ):
        return None
    return body


def _starts(lines: list[bytes]) -> list[int]:
    """Each line's byte offset, for lines that are the whole message from its first byte."""
    starts = [0] * len(lines)
    pos = 0
    for i, line in enumerate(lines):
        starts[i] = pos
        pos += len(line) + 1
    return starts


def as_bytes(text: str) -> bytes:
    """text as the bytes it came from: a command-line argument's undecodable bytes come back
    (surrogateescape), and any other lone surrogate stays invalid UTF-8."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def cleanup(text: str, comment: str | None = "#") -> tuple[list[str], list[int]]:
    """git_cleanup over text (for callers that hold text): the kept lines and, for each, its 1-based
    line number in the original text."""
    cleaned = git_cleanup(as_bytes(text), None if comment is None else as_bytes(comment))
    return [line.decode("utf-8", "surrogateescape") for line in cleaned.lines], cleaned.numbers


def may_have_comments(data: bytes) -> bool:
    """Whether git's comment string can change the clean-up: some line starts with something other
    than an ASCII letter or digit. (A comment string that starts with a letter or digit would make
    git drop ordinary text; a message whose lines all start so is taken as it is, without asking git:
    the commit-msg hook asks git only for messages that can hold a comment.)"""
    return any(line[:1] not in _ALNUM_BYTES for line in data.split(b"\n") if line)


def auto_comment(data: bytes) -> bytes:
    """The character git chose for core.commentChar=auto, read back from the file it wrote
    (builtin/commit.c, adjust_comment_line_char): git writes its own comment block below the message,
    so the last line that is git's (its scissors line, or a line of the block that is the character
    alone) names it. Without such a block, git's own rule over the message: `#` when it holds no `#`
    at all, else the first candidate that starts no line."""
    lines = data.split(b"\n")
    for line in reversed(lines):
        line = line.rstrip(b"\r")
        if len(line) == 1 and line in AUTO_COMMENT_BYTES:
            return line
        if line[:1] in AUTO_COMMENT_BYTES and line[1:] == b" " + _SCISSORS:
            return line[:1]
    if b"#" not in data:
        return b"#"
    used = {part[:1] for part in data.replace(b"\r", b"\n").split(b"\n")}
    for ch in AUTO_COMMENT_CANDIDATES:
        if ch.encode() not in used:
            return ch.encode()
    return b"#"  # git refuses to commit: every candidate starts a line


def parse_header(header: str) -> Header:
    """Parse `type(scope)!: description`, reporting the first structural problem with a column."""
    if not header.strip():
        return Header(
            error=(
                1,
                "the header (first line) is empty",
                "Write `<type>: <description>` on the first line.",
            )
        )
    end = _type_end(header)
    if not end:
        return Header(
            error=(
                1,
                f"the header must start with a type, found `{header[:1]}`",
                "Start with a type, e.g. `fix: correct the typo`.",
            )
        )
    typ = header[:end]
    pos = end
    scope: str | None = None
    scope_col = 0
    if header.startswith("(", pos):
        close = header.find(")", pos)
        if close < 0:
            return Header(
                typ,
                error=(pos + 1, "the scope is not closed with `)`", SCOPE_HINT),
            )
        scope = header[pos + 1 : close]
        scope_col = pos + 2
        if "(" in scope:
            hint = "Write one scope in one pair of parentheses, e.g. `fix(api): ...`."
            at = pos + 2 + scope.index("(")
            return Header(
                typ, scope, error=(at, "the scope contains `(`", hint), scope_col=scope_col
            )
        pos = close + 1
    breaking = header.startswith("!", pos)
    if breaking:
        pos += 1
    if not header.startswith(":", pos):
        return Header(typ, scope, breaking, error=_no_colon(header, typ, pos), scope_col=scope_col)
    pos += 1
    rest = header[pos:]
    if rest[:1] == " " and rest[1:2] in _ASCII_ALNUM:  # most headers: `: ` and a word
        return Header(typ, scope, breaking, rest[1:], None, scope_col, pos + 2)
    desc = rest.strip() if visible(rest) else ""  # zero-width characters alone say nothing
    desc_col = pos + len(rest) - len(rest.lstrip()) + 1
    if not desc:  # nothing, spaces, or only invisible characters
        after = "`: `" if rest.startswith(" ") else "`:`"
        error = (
            pos + 1,
            f"the description after {after} is empty",
            "Describe the change after `: `.",
        )
    elif not rest.startswith(" "):
        error = (pos + 1, "expected a space after `:`", f"Write `{header[:pos]} {desc}`.")
    elif rest[1].isspace():
        error = (
            pos + 2,
            "the description must follow `: ` immediately, found more whitespace",
            f"Write `{header[:pos]} {desc}`.",
        )
    else:
        return Header(typ, scope, breaking, rest[1:], None, scope_col, pos + 2)
    # only the spacing or an empty description is wrong: the fields are complete (lenient)
    return Header(typ, scope, breaking, desc, error, scope_col, desc_col, True)


SCOPE_HINT = "Write the scope as `type(scope): ...`."


def _no_colon(header: str, typ: str, pos: int) -> tuple[int, str, str]:
    """The error of a header with no `:` where one belongs (at 0-based `pos`)."""
    rest = header[pos:]
    if pos == len(typ) and rest.startswith(" "):
        return (
            pos + 1,
            f"the header is not `<type>[(scope)][!]: <description>`: no `:` after `{typ}`",
            "Start with a type and a colon, e.g. `fix: " + header[:1].lower() + header[1:] + "`.",
        )
    return (
        pos + 1,
        f"expected `:` at column {pos + 1}, found `{rest[:1] or 'end of line'}`",
        "Put `: ` right after the type, scope and `!`, e.g. `feat(api)!: drop v1`.",
    )


def _paragraph_starts(lines: list[str] | tuple[str, ...]) -> list[int]:
    starts = []
    for i in range(1, len(lines)):
        if lines[i] and not lines[i - 1]:
            starts.append(i)
    return starts


def parse_footers(lines: list[str] | tuple[str, ...]) -> tuple[tuple[Footer, ...], int]:
    """Footers are the trailing paragraphs whose first line is `Token: value` / `Token #value`;
    other lines inside them continue the previous footer's value (multi-line values)."""
    if len(lines) < 3 and (not lines or lines[0]):  # no paragraph after the header's
        return (), len(lines)
    starts = _paragraph_starts(lines)
    first = len(lines)
    for start in reversed(starts):
        if footer_match(lines[start]):
            first = start
        else:
            break
    # (token, separator, value lines, line number): values are joined once, at the end (joining
    # line by line made a 200,000-line footer take minutes)
    found: list[tuple[str, str, list[str], int]] = []
    for i in range(first, len(lines)):
        m = footer_match(lines[i])
        if m:
            found.append((m[0], m[1], [m[2]], i + 1))
        elif found:
            found[-1][2].append(lines[i])
    return tuple(Footer(tok, sep, "\n".join(value), line) for tok, sep, value, line in found), first


def parse(lines: list[str]) -> Message:
    header = parse_header(lines[0] if lines else "")
    footers, start = parse_footers(lines)
    return Message(lines, header, footers, start)  # the caller's list: never changed after


# the forms git itself writes (builtin/merge.c, fmt-merge-msg.c), plus GitHub's and GitLab's
_MERGE_PATTERNS = (
    r"^Merge (?:remote-tracking )?branch(?:es)? '[^']+'(?:(?:, '[^']+')* and '[^']+')?(?: of \S+)?(?: into \S+)?$",
    r"^Merge (?:tag|commit) '[^']+'(?: of \S+)?(?: into \S+)?$",
    r"^Merge pull request #\d+ from \S+$",
    r"^Merge branch '[^']+' into '[^']+'$",
)
_REVERT_PATTERN = r'^(?:Revert|Reapply) ".*"$'
_REVERT_BODY_PATTERN = r"^This reverts commit [0-9a-f]{7,64}\.?$"
_FIXUP_PREFIXES = ("fixup! ", "squash! ", "amend! ")


def special_kind(lines: list[str] | tuple[str, ...], parents: int | None = None) -> str:
    """ "merge", "revert", "fixup" or "" for a commit git generated or marked; parents (range mode)
    decides merges, otherwise only git's exact generated merge headers count. (The patterns are
    compiled only for headers that start like one: most messages never need them.)"""
    header = lines[0] if lines else ""
    if parents is not None:
        if parents > 1:
            return "merge"
    elif header.startswith("Merge ") and any(regex().match(p, header) for p in _MERGE_PATTERNS):
        return "merge"
    if header.startswith(_FIXUP_PREFIXES) and header[header.index(" ") + 1 :][:1].strip():
        return "fixup"
    if (
        header.startswith(("Revert ", "Reapply "))
        and regex().match(_REVERT_PATTERN, header)
        and regex().search(_REVERT_BODY_PATTERN, "\n".join(lines[1:]), regex().M)
    ):
        return "revert"
    return ""
