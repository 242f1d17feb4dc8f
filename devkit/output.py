"""Output formats: text for people, JSON for machines, GitHub workflow commands; all over Reports."""

from __future__ import annotations

import os
import sys

from devkit.record import TYPE_CHECKING
from devkit.violations import ERROR, Report, Violation

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

FORMATS = ("text", "json", "github")
JSON_SCHEMA_VERSION = 1

# C0 and C1 control characters and DEL, as escapes: a branch name, a commit type or a path that holds
# ESC or CR would otherwise drive the reader's terminal (clear it, retitle it, overwrite the verdict)
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c != 0x09}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r"})
# json.dumps(ensure_ascii=False) escapes C0 itself, but writes DEL and C1 as they are
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


def shown(text: str) -> str:
    """text safe to print: its control characters (tab aside) written as escapes (`\\x1b`, `\\n`)."""
    if text.isprintable():  # holds none of them (translate looks up every character)
        return text
    return text.translate(_ESCAPES)


def use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


LABELS = {"commit": "message", "title": "title", "branch": "branch"}


def where(v: Violation, check: str = "") -> str:
    loc = v.location
    if loc.commit:
        head = f"commit {loc.commit[:10]}"
    else:
        head = shown(loc.file) or LABELS.get(check, check or "devkit")
    if loc.line:
        head += f":{loc.line}"
        if loc.col:
            head += f":{loc.col}"
    return head


def render_text(reports: list[Report], stream: TextIO) -> None:
    color = use_color(stream)
    for report in reports:
        group = None
        for v in report.violations:
            key = (v.location.commit, v.location.file) if v.location.commit else None
            if key and key != group and v.context:
                stream.write(
                    _paint(f"commit {v.location.commit[:10]} {v.context!r}", "1", color) + "\n"
                )
            group = key
            sev = _paint(v.severity, "31" if v.severity == ERROR else "33", color)
            stream.write(
                f"{where(v, report.check)}: {sev} {_paint(v.code, '1', color)} [{v.name}] "
                f"{shown(v.message)}\n"
            )
            if v.hint:
                stream.write(f"    {_paint('hint:', '36', color)} {shown(v.hint)}\n")
        if report.error:
            stream.write(f"{report.check}: {_paint('error', '31', color)}: {shown(report.error)}\n")
        for note in report.notes:
            stream.write(f"{report.check}: note: {shown(note)}\n")
    stream.write(summary_line(reports) + "\n")


def summary_line(reports: list[Report]) -> str:
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    failed = [r.check for r in reports if r.error]
    parts = []
    for r in reports:
        if r.checked:
            parts.append(f"{r.checked} {_noun(r.check, r.checked)}")
    checked = f" ({', '.join(parts)} checked)" if parts else ""
    if failed:
        return f"devkit: {errors} error(s), {warnings} warning(s); could not run: {', '.join(failed)}{checked}"
    if errors or warnings:
        return f"devkit: {errors} error(s), {warnings} warning(s){checked}"
    return f"devkit: all good{checked}"


def _noun(check: str, n: int) -> str:
    nouns = {
        "commit": "commit message",
        "branch": "branch name",
        "news": "fragment",
        "lint": "file",
        "title": "title",
    }
    word = nouns.get(check, check)
    return word if n == 1 else word + "s"


def violation_dict(v: Violation) -> dict[str, object]:
    return {
        "code": v.code,
        "name": v.name,
        "severity": v.severity,
        "message": v.message,
        "hint": v.hint or None,
        "context": v.context or None,
        "location": {
            "file": v.location.file or None,
            "line": v.location.line or None,
            "col": v.location.col or None,
            "commit": v.location.commit or None,
        },
    }


def as_dict(reports: list[Report]) -> dict[str, object]:
    """The JSON report's data."""
    return {
        "version": JSON_SCHEMA_VERSION,
        "ok": all(r.ok for r in reports),
        "errors": sum(r.errors for r in reports),
        "warnings": sum(r.warnings for r in reports),
        "checks": [
            {
                "check": r.check,
                "ok": r.ok,
                "checked": r.checked,
                "error": r.error or None,
                "notes": list(r.notes),
                "violations": [violation_dict(v) for v in r.violations],
            }
            for r in reports
        ],
    }


def json_encoder() -> Callable[[object], str]:
    """`json.dumps(value, ensure_ascii=False)` for a report's values (text, numbers, true, false,
    null, and lists and tables of them), built on the C string encoder `json` itself uses: importing
    `json` imports `re` and `enum`, a twentieth of a 5,000-commit range check."""
    try:
        from _json import encode_basestring as string  # CPython's, what json.encoder takes
    except ImportError:  # another interpreter: json's own encoder
        import json

        return json.JSONEncoder(ensure_ascii=False).encode

    def encode(value: object) -> str:
        if isinstance(value, str):
            return string(value)  # type: ignore[no-any-return]
        if value is None or value is True or value is False:
            return {None: "null", True: "true", False: "false"}[value]
        if type(value) is int:
            return int.__repr__(value)
        if type(value) is dict and all(type(k) is str for k in value):
            return "{" + ", ".join(f"{string(k)}: {encode(v)}" for k, v in value.items()) + "}"
        if type(value) in (list, tuple):
            return "[" + ", ".join(encode(v) for v in value) + "]"  # type: ignore[attr-defined]
        import json  # anything else (a float): json's rules

        return json.dumps(value, ensure_ascii=False)

    return encode


def render_json(reports: list[Report], stream: TextIO) -> None:
    """Indented down to each violation, which is one line: json's C encoder only runs without
    `indent`, and the pure-Python one made a 5,000-commit report a third slower than the text."""
    encode = json_encoder()

    def dump(value: object, depth: int, pad: str) -> str:
        if depth == 0 or not isinstance(value, dict | list) or not value:
            text = encode(value)  # a violation (depth 0) is one line
            # DEL and C1 are not ASCII but DEL: most reports need no translate (a lookup per character)
            return text if text.isascii() and "\x7f" not in text else text.translate(_JSON_ESCAPES)
        inner = pad + "  "
        if isinstance(value, dict):
            # the keys are devkit's own ASCII names
            items = [f"{inner}{encode(k)}: {dump(v, depth - 1, inner)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        items = [f"{inner}{dump(v, depth - 1, inner)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"

    # levels: the report, its checks, each check, its violations; a violation is one line
    stream.write(dump(as_dict(reports), 4, "") + "\n")


def _escape_data(s: str) -> str:
    """A workflow command's data: `%`, CR and LF as GitHub decodes them, other controls shown."""
    return shown(s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def annotation(v: Violation) -> str:
    props = []
    if v.location.file:
        props.append(f"file={_escape_prop(v.location.file)}")
        if v.location.line:
            props.append(f"line={v.location.line}")
            if v.location.col:
                props.append(f"col={v.location.col}")
    props.append(f"title={_escape_prop(f'devkit {v.code} {v.name}')}")
    level = "error" if v.severity == ERROR else "warning"
    text = v.message
    if v.location.commit:
        text = (
            f"commit {v.location.commit[:10]} ({v.context}): {text}"
            if v.context
            else f"commit {v.location.commit[:10]}: {text}"
        )
    if v.hint:
        text += f" — {v.hint}"
    return f"::{level} {','.join(props)}::{_escape_data(text)}"


def markdown_summary(reports: list[Report]) -> str:
    lines = [
        "## devkit",
        "",
        "| check | result | checked | errors | warnings |",
        "|---|---|---|---|---|",
    ]
    for r in reports:
        result = "could not run" if r.error else ("pass" if r.ok else "fail")
        icon = {"pass": "✅", "fail": "❌"}.get(result, "⚠️")
        lines.append(f"| {r.check} | {icon} {result} | {r.checked} | {r.errors} | {r.warnings} |")
    for r in reports:
        if not r.violations and not r.error:
            continue
        lines += ["", f"### {r.check}", ""]
        if r.error:
            lines.append(f"**Could not run:** {shown(r.error)}")
            lines.append("")
        if r.violations:
            lines += ["| where | rule | message | hint |", "|---|---|---|---|"]
            for v in r.violations:
                cells = [where(v, r.check), f"`{v.code}` {v.name}", v.message, v.hint]
                lines.append(
                    "| "
                    + " | ".join(shown(c.replace("|", "\\|").replace("\n", " ")) for c in cells)
                    + " |"
                )
    return "\n".join(lines) + "\n"


def render_github(reports: list[Report], stream: TextIO) -> None:
    for r in reports:
        for v in r.violations:
            stream.write(annotation(v) + "\n")
        if r.error:
            stream.write(
                f"::error title={_escape_prop(f'devkit {r.check}')}::{_escape_data(r.error)}\n"
            )
        for note in r.notes:
            stream.write(
                f"::notice title={_escape_prop(f'devkit {r.check}')}::{_escape_data(note)}\n"
            )
    stream.write(summary_line(reports) + "\n")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        problem = _append(summary, markdown_summary(reports))
        if problem:  # the report above stands; only the job summary is lost
            sys.stderr.write(
                f"devkit: warning: cannot write the job summary to GITHUB_STEP_SUMMARY "
                f"{shown(summary)}: {problem}\n"
            )


def _append(path: str, text: str) -> str:
    """Append text to the regular file at path (made when missing); why not, else "". A FIFO is
    refused, not opened: opening one for writing waits for a reader."""
    from devkit.files import not_regular

    try:
        problem = not_regular(os.stat(path).st_mode) if os.path.lexists(path) else ""
        if problem:
            return problem
        # O_NONBLOCK: a FIFO put there after the check fails the open instead of blocking it
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        problem = not_regular(os.fstat(fd).st_mode)
        if not problem:
            os.set_blocking(fd, True)
            with open(fd, "a", encoding="utf-8", closefd=False) as fh:
                fh.write(text)
    except OSError as exc:
        problem = exc.strerror or str(exc)
    finally:
        os.close(fd)
    return problem


def render(reports: list[Report], fmt: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    {"text": render_text, "json": render_json, "github": render_github}[fmt](reports, stream)


def exit_code(reports: list[Report]) -> int:
    """1 when any check found an error or could not run, else 0 (warnings never fail)."""
    return 1 if any(r.error or r.errors for r in reports) else 0
