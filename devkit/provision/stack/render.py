"""Jinja2 for stack templates: StrictUndefined, trailing newline kept, and every `{{ value }}` in a
file template written for its file's format.

A file's format is known from its name or declared in stack.toml (stack.FORMATS): a shell file gets
each value as a quoted word, a TOML, JSON or YAML file as a string literal, an INI file with its `%`
doubled, and so on; a number is written as is, and so is a filter's output in the file's own format
(`{{ x | toml }}` in a TOML file), as Jinja2's HTML autoescape does with Markup. A value the format
cannot hold at all (a newline in a shell file) is refused. Strings in stack.toml are not files: their
authors quote with the filters (`q` for the shell).

Every render error becomes one DevkitError naming the template (or stack.toml key), the line and the
variable, raised while planning, so nothing is written when a value cannot be.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache

from devkit.errors import DevkitError
from devkit.provision.stack import spec as stk
from devkit.provision.stack import vartypes
from devkit.ruff import cache_dir

ANY = "any"  # an Escaped value every format holds as is (a validated identifier)
# the code Jinja2 generates depends on the environment's finalize: part of the compiled cache's key
CODEGEN = "finalize-by-format-1"


class UnsafeValue(ValueError):
    """A value a format cannot hold. `value` and `check` let the message name the variable it came
    from (render.blame); the reason never repeats the value, which may be a secret."""

    def __init__(
        self,
        reason: str,
        value: str = "",
        check: Callable[[str], object] | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason, self.value, self.check, self.hint = reason, value, check, hint


class Refused(Exception):
    """A stack's own refusal of a value (`refuse(message, hint)` in a template)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class Escaped(str):
    """Text already written in a format (a filter's output): a file of that format takes it as is;
    in a file of another format it is a value like any other (a shell word in a TOML string)."""

    format: str

    def __new__(cls, text: str, fmt: str) -> Escaped:
        self = super().__new__(cls, text)
        self.format = fmt
        return self


def refuse(message: str, hint: str = "") -> str:
    """Stops the render with the stack's own words: `{{ x if ok else refuse('...', 'Use ...') }}`."""
    raise Refused(message, hint)


def _char(ch: str) -> str:
    names = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\0": "a NUL byte"}
    return names.get(ch, f"the control character U+{ord(ch):04X}")


def text_of(value: Any, where: str) -> str:
    """A value as text a file can hold: a lone surrogate (from a --set of bytes that are not
    UTF-8) cannot be written as UTF-8."""
    text = str(value)
    if re.search(r"[\ud800-\udfff]", text):
        raise UnsafeValue(
            f"has bytes that are not UTF-8 text, which {where} cannot hold",
            text,
            lambda v: text_of(v, where),
        )
    return text


def one_line(value: Any, where: str) -> str:
    """The value, refused when it has a newline or another control character."""
    text = text_of(value, where)
    bad = re.search(r"[\x00-\x1f\x7f]", text)
    if bad:
        why = f"has {_char(bad.group())}, which {where} cannot hold"
        raise UnsafeValue(why, text, lambda v: one_line(v, where))
    return text


def shell(value: Any) -> str:
    """A word for a shell file: single-quoted where needed, and one line (a newline in a value
    that lands in a comment would start a command)."""
    return shlex.quote(one_line(value, "a shell file"))


_TOML_ESCAPES = {
    **{i: f"\\u{i:04X}" for i in (*range(0x20), 0x7F)},
    **{ord(k): v for k, v in (('"', '\\"'), ("\\", "\\\\"), ("\b", "\\b"), ("\t", "\\t"))},
    **{ord(k): v for k, v in (("\n", "\\n"), ("\f", "\\f"), ("\r", "\\r"))},
}


def toml(value: Any) -> str:
    """A TOML value: a number or a boolean as is, anything else as a basic string (TOML has no
    surrogate escapes and wants DEL escaped, so JSON's escapes are not quite TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + text_of(value, "a TOML file").translate(_TOML_ESCAPES) + '"'


def to_json(value: Any, indent: int | None = None) -> str:
    """A JSON value (Jinja2's tojson without the HTML escapes); anything JSON has no type for is
    its text. A string is checked for text a UTF-8 file can hold."""
    if isinstance(value, str):
        text_of(value, "a JSON file")
    return json.dumps(value, indent=indent, sort_keys=True, default=str)


def yaml(value: Any) -> str:
    """A YAML value: a number or a boolean as is, anything else as a double-quoted scalar with every
    character outside printable ASCII escaped (YAML 1.1 takes NEL and U+2028 as line breaks)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    out = []
    for ch in text_of(value, "a YAML file"):
        n = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= n < 0x7F:
            out.append(ch)
        else:
            out.append(
                f"\\x{n:02X}" if n < 0x100 else f"\\u{n:04X}" if n < 0x10000 else f"\\U{n:08X}"
            )
    return '"' + "".join(out) + '"'


def ini(value: Any, where: str = "an INI file", expansions: int = 1) -> str:
    """A raw INI value, as Python's configparser reads it back: one line, its ends not stripped, no
    inline comment (; or # at its start or after whitespace, where such comments are allowed), and
    its `%` doubled once per interpolation that reads it."""
    text = one_line(value, where)
    again = lambda v: ini(v, where, expansions)  # noqa: E731
    if text != text.strip():
        raise UnsafeValue(f"has whitespace at an end, which {where} strips", text, again)
    if text[:1] in (";", "#"):  # after `key = `, a comment
        raise UnsafeValue(f"starts with ; or #, which may start a comment in {where}", text, again)
    if any(a.isspace() and b in ";#" for a, b in itertools.pairwise(text)):
        why = f"has whitespace then ; or #, which starts a comment in {where} (no escape exists)"
        raise UnsafeValue(why, text, again)
    return text.replace("%", "%" * 2**expansions)


def python(value: Any) -> str:
    """A Python literal: a number or a boolean as is, anything else as a string."""
    if isinstance(value, (bool, int, float)):
        return repr(value)
    return repr(text_of(value, "a Python file"))


def sql(value: Any) -> str:
    """A SQL string literal ('' doubling)."""
    return "'" + str(value).replace("'", "''") + "'"


def pgconf(value: Any) -> str:
    """A postgresql.conf string value: single-quoted, one line; PostgreSQL reads backslash escapes
    inside it, so a backslash is doubled."""
    text = one_line(value, "postgresql.conf")
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def redisconf(value: Any) -> str:
    """A redis.conf argument: double-quoted with backslash escapes, one line."""
    text = one_line(value, "redis.conf")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ident(value: Any) -> str:
    """A SQL / config identifier (database, role, volume names): refused, not quoted, when it has
    anything but letters, digits and underscores, so it is safe inside any quoting around it."""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", text):
        raise UnsafeValue(
            f"is not a plain identifier (letters, digits, _; at most 63): {text!r}",
            text,
            ident,
            "Choose a name of letters, digits and underscores.",
        )
    return text


def as_is(value: Any) -> str:
    return str(value)


# a value's literal in each format a file can be in (one per stack.FORMATS)
ESCAPES: dict[str, Callable[[Any], str]] = {
    "shell": shell,
    "toml": toml,
    "json": to_json,
    "yaml": yaml,
    "ini": ini,
    "pgconf": pgconf,
    "redisconf": redisconf,
    "python": python,
    "text": as_is,
}


def escape(fmt: str, value: Any) -> Any:
    """What `{{ value }}` writes into a file of format fmt."""
    if fmt == "text" or (isinstance(value, Escaped) and value.format in (fmt, ANY)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return ESCAPES[fmt](value)


def _filter(fmt: str, function: Callable[..., str]) -> Callable[..., Escaped]:
    return lambda *args, **kwargs: Escaped(function(*args, **kwargs), fmt)


@jinja2.pass_context
def _finalize(context: jinja2.runtime.Context, value: Any) -> Any:
    # a stack.toml string has no name (and no format): its values are written as they are
    if context.name is None:
        return value
    return escape(_format(context), value)


@jinja2.pass_context
def _safe(context: jinja2.runtime.Context, value: Any) -> Any:
    """`| safe`: the author vouches the value is already in the file's format."""
    return Escaped(str(value), _format(context)) if context.name else value


def _format(context: jinja2.runtime.Context) -> str:
    name = str(context.name)
    env = context.environment
    fmt = (env.formats if isinstance(env, _Environment) else {}).get(name) or stk.format_of(name)
    if not fmt:
        raise Refused(
            f"cannot tell the format of {name} from its name",
            f"Name it for its format ({', '.join(stk.SUFFIXES)}).",
        )
    return fmt


def blame(ctx: dict[str, Any], value: str, check: Callable[[str], object] | None = None) -> str:
    """The variable a refused value came from: the one that holds it, else the longest one inside
    it that the same check refuses on its own (the base dir inside a path)."""
    leaves = {n: v for n, v in vartypes.flatten(ctx).items() if isinstance(v, str) and v}
    for name, v in leaves.items():
        if v == value:
            return name
    if check is None:
        return ""

    def refused(v: str) -> bool:
        try:
            check(v)
        except UnsafeValue:
            return True
        return False

    inside = [n for n, v in leaves.items() if v in value and refused(v)]
    return max(inside, key=lambda n: len(leaves[n]), default="")


# a value devkit gives the templates rather than a stack variable: what it is, what to change
_ENGINE = {
    "base": (
        "the base dir",
        "Choose another base dir (--base-dir, or base_dir in [tool.devkit.hosts.NAME]).",
    ),
    "home": (
        "the login user's home",
        "The home is in the path: put the stack elsewhere with --base-dir.",
    ),
    "host": ("the host's name", "Rename the host in [tool.devkit.hosts] (letters, digits, . _ -)."),
}


def unsafe(where: str, exc: UnsafeValue, name: str) -> DevkitError:
    """One line: where, the variable (when known) and why; the hint says what to change."""
    if name in _ENGINE:
        subject, hint = _ENGINE[name]
    elif name:
        subject = f"variable `{name}`"
        hint = f"Change `{name}` (--set {name}=VALUE, or [tool.devkit.hosts.NAME.vars])." + (
            f" {exc.hint}" if exc.hint else ""
        )
    else:
        subject, hint = "a value", exc.hint
    return DevkitError(f"{where}: {subject} {exc.reason}", hint)


class _CodeCache(jinja2.BytecodeCache):
    """Compiled templates in the user's cache dir, keyed by their source (and Jinja2's and Python's
    versions, and how devkit's environment generates code): compiling the stack's hundred templates
    is most of a no-op re-run's own time. A cache that cannot be read or written is only slower."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        # code compiled before the finalize changed would write values unescaped
        return super().get_cache_key(f"{CODEGEN}\0{name}", filename)

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            with open(self.directory / f"{bucket.key}.code", "rb") as f:
                bucket.load_bytecode(f)
        except (OSError, ValueError, EOFError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                bucket.write_bytecode(f)
            os.replace(tmp, self.directory / f"{bucket.key}.code")
        except OSError:
            pass


class _Environment(jinja2.Environment):
    """from_string through the same code cache, and each string compiled once per run (variables
    are rendered over several passes)."""

    def __init__(self, formats: dict[str, str], **options: Any) -> None:
        super().__init__(**options)
        self._compiled: dict[str, jinja2.Template] = {}
        self.formats = formats  # template name -> its file's format, where stack.toml declares it

    def from_string(  # type: ignore[override]
        self, source: str, globals: None = None, template_class: None = None
    ) -> jinja2.Template:
        template = self._compiled.get(source)
        if template is None:
            cache = self.bytecode_cache
            # keyed by the source itself: each string has its own file
            bucket = cache.get_bucket(self, source, None, source) if cache else None
            if bucket is not None and bucket.code is not None:
                code = bucket.code
            else:
                code = self.compile(source)
                if cache is not None and bucket is not None:
                    bucket.code = code
                    cache.set_bucket(bucket)
            template = self.template_class.from_code(self, code, self.make_globals(None))
            self._compiled[source] = template
        return template


def environment(
    stack_dir: Path, *more: Path, formats: dict[str, str] | None = None
) -> jinja2.Environment:
    """Templates are looked up in the stack's dir, then in the dirs of the stacks it extends; a
    template's format is `formats`' (stack.toml's declared ones), else its name's."""
    env = _Environment(
        formats or {},
        loader=jinja2.FileSystemLoader([str(stack_dir), *(str(d) for d in more)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
        bytecode_cache=_CodeCache(cache_dir() / "templates"),
    )
    # a filter per language a value lands in, for stack.toml's strings and for a value of one
    # language inside another: q (shell), toml, tojson, pgconf, redisconf; sql (a literal inside a
    # shell word) and ident (safe inside any quoting)
    env.globals["refuse"] = refuse
    env.filters.update(
        q=_filter("shell", lambda v: shlex.quote(str(v))),
        toml=_filter("toml", toml),
        tojson=_filter("json", to_json),
        pgconf=_filter("pgconf", pgconf),
        redisconf=_filter("redisconf", redisconf),
        ident=_filter(ANY, ident),
        sql=sql,
        safe=_safe,
    )
    return env


def _fail(
    where: str, exc: Exception, lineno: int | None = None, ctx: dict[str, Any] | None = None
) -> DevkitError:
    line = f" line {lineno}" if lineno else ""
    if isinstance(exc, Refused):
        return DevkitError(f"{exc.message} ({where}{line})", exc.hint)
    if isinstance(exc, jinja2.UndefinedError):
        return DevkitError(
            f"{where}{line}: undefined variable: {exc.message}",
            "Define it under [vars] in stack.toml, per host in [tool.devkit.hosts.NAME.vars], "
            "or with --set NAME=VALUE.",
        )
    if isinstance(exc, UnsafeValue):
        return unsafe(f"{where}{line}", exc, blame(ctx or {}, exc.value, exc.check))
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return DevkitError(f"{where} line {exc.lineno}: template syntax error: {exc.message}")
    return DevkitError(f"{where}{line}: cannot render: {type(exc).__name__}: {exc}")


def _lineno(exc: BaseException) -> int | None:
    # the template's own frame carries the line; jinja2 rewrites tracebacks so it is visible here
    tb, line = exc.__traceback__, None
    while tb is not None:
        if (
            tb.tb_frame.f_code.co_filename.endswith(".j2")
            or "template" in tb.tb_frame.f_code.co_name
        ):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_string(env: jinja2.Environment, text: str, ctx: dict[str, Any], where: str) -> str:
    if "{" not in text:
        return text
    try:
        return env.from_string(text).render(ctx)
    except (jinja2.TemplateError, TypeError, ValueError, Refused) as exc:
        raise _fail(where, exc, ctx=ctx) from None


def render_file(env: jinja2.Environment, name: str, ctx: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(ctx)
    except jinja2.TemplateSyntaxError as exc:
        raise _fail(f"template {name}", exc) from None
    except (jinja2.TemplateError, TypeError, ValueError, Refused) as exc:
        raise _fail(f"template {name}", exc, _lineno(exc), ctx) from None


class _NotReady(Exception):
    """A variable refers to another one that is itself not rendered yet."""


class _Pending:
    """Stands in for a variable whose value is still a template: touching it defers the render."""

    def __init__(self, *_: Any) -> None:
        pass

    def _wait(self, *_: Any, **__: Any) -> Any:
        raise _NotReady

    __str__ = __bool__ = __eq__ = __ne__ = __iter__ = __len__ = __getattr__ = _wait
    __add__ = __radd__ = __lt__ = __gt__ = __int__ = __hash__ = __contains__ = _wait


def _pending_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _pending_tree(v)
        if isinstance(v, dict)
        else (_Pending() if isinstance(v, str) and "{" in v else v)
        for k, v in node.items()
    }


def _settle(
    env: jinja2.Environment, variables: dict[str, Any], engine: dict[str, Any], prefix: str
) -> dict[str, Any]:
    """Render, pass after pass, the variables whose references are all final."""
    out = variables
    for _ in range(8):
        ctx = {**_pending_tree(out), **engine}
        nxt = _render_tree(env, out, ctx, prefix, defer=True)
        if nxt == out:
            break
        out = nxt
    return out


def resolve_vars(
    env: jinja2.Environment, variables: dict[str, Any], engine: dict[str, Any], prefix: str = "vars"
) -> dict[str, Any]:
    """Render string variables that reference others (`run_as = "{{ user }}"`): each pass renders
    the variables whose references are all final, so the order they are written in does not matter."""
    out = _settle(env, variables, engine, prefix)
    ctx = {**out, **engine}
    return _render_tree(env, out, ctx, prefix)


def render_early(
    env: jinja2.Environment,
    text: str,
    variables: dict[str, Any],
    engine: dict[str, Any],
    later: tuple[str, ...],
    where: str,
) -> str:
    """`text` rendered before the engine variables `later` are known (the source stage renders
    [checkout] source before the source says its version): the variables that need none of them
    are settled first; a text that needs one, through any variable, is refused."""
    ctx = {**engine, **{name: _Pending() for name in later}}
    settled = _settle(env, variables, ctx, "vars")
    try:
        return render_string(env, text, {**_pending_tree(settled), **ctx}, where)
    except _NotReady:
        raise DevkitError(
            f"{where}: it cannot depend on what the source brings ({', '.join(later)})",
            'Render it from settings alone, e.g. source = "{{ backend_ai.source }}".',
        ) from None


def _render_tree(
    env: jinja2.Environment,
    node: dict[str, Any],
    ctx: dict[str, Any],
    where: str,
    defer: bool = False,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for k, v in node.items():
        if isinstance(v, dict):
            result[k] = _render_tree(env, v, ctx, f"{where}.{k}", defer)
        elif isinstance(v, str) and defer and "{" in v:
            try:
                result[k] = env.from_string(v).render(ctx)
            except _NotReady:
                result[k] = v
            except Exception:
                result[k] = v  # the final pass reports it with its name
        elif isinstance(v, str):  # named as the user sets it (stack.toml, --set, a host's vars)
            name = f"{where}.{k}".removeprefix("vars.")
            result[k] = render_string(env, v, ctx, f"variable `{name}`")
        else:
            result[k] = v
    return result
