"""Jinja2 for stack templates: StrictUndefined, trailing newline kept, no autoescape.

Every render error becomes one DevkitError naming the template (or stack.toml key) and the line,
raised while planning, so nothing is written when a variable is undefined.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache

from devkit.errors import DevkitError
from devkit.ruff import cache_dir


class UnsafeValue(ValueError):
    pass


class Refused(Exception):
    """A stack's own refusal of a value (`refuse(message, hint)` in a template)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def refuse(message: str, hint: str = "") -> str:
    """Stops the render with the stack's own words: `{{ x if ok else refuse('...', 'Use ...') }}`."""
    raise Refused(message, hint)


def _one_line(value: Any, where: str) -> str:
    text = str(value)
    if re.search(r"[\x00-\x1f\x7f]", text):
        raise UnsafeValue(
            f"{text!r} has a newline or a control character, which {where} cannot hold"
        )
    return text


def toml(value: Any) -> str:
    """A TOML value: a number or a boolean as is, anything else as a basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))  # JSON's string escapes are TOML's


def sql(value: Any) -> str:
    """A SQL string literal ('' doubling)."""
    return "'" + str(value).replace("'", "''") + "'"


def pgconf(value: Any) -> str:
    """A postgresql.conf string value: single-quoted, one line."""
    return "'" + _one_line(value, "postgresql.conf").replace("'", "''") + "'"


def redisconf(value: Any) -> str:
    """A redis.conf argument: double-quoted with backslash escapes, one line."""
    text = _one_line(value, "redis.conf")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ident(value: Any) -> str:
    """A SQL / config identifier (database, role, volume names): refused, not quoted, when it has
    anything but letters, digits and underscores, so it is safe inside any quoting around it."""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", text):
        raise UnsafeValue(f"{text!r} is not a plain identifier (letters, digits, _; at most 63)")
    return text


class _CodeCache(jinja2.BytecodeCache):
    """Compiled templates in the user's cache dir, keyed by their source (and Jinja2's and Python's
    versions): compiling the stack's hundred templates is most of a no-op re-run's own time. A
    cache that cannot be read or written is only slower."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

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

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._compiled: dict[str, jinja2.Template] = {}

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


def environment(stack_dir: Path, *more: Path) -> jinja2.Environment:
    """Templates are looked up in the stack's dir, then in the dirs of the stacks it extends."""
    env = _Environment(
        loader=jinja2.FileSystemLoader([str(stack_dir), *(str(d) for d in more)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        bytecode_cache=_CodeCache(cache_dir() / "templates"),
    )
    # one filter per language a value lands in: q (shell), toml, sql and ident, pgconf, redisconf;
    # tojson (Jinja2's own) for JSON and YAML
    env.globals["refuse"] = refuse
    env.filters.update(
        q=lambda v: shlex.quote(str(v)),
        toml=toml,
        sql=sql,
        ident=ident,
        pgconf=pgconf,
        redisconf=redisconf,
    )
    return env


def _fail(where: str, exc: Exception, lineno: int | None = None) -> DevkitError:
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
        return DevkitError(
            f"{where}{line}: {exc}", "Choose a name of letters, digits and underscores."
        )
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
        raise _fail(where, exc) from None


def render_file(env: jinja2.Environment, name: str, ctx: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(ctx)
    except jinja2.TemplateSyntaxError as exc:
        raise _fail(f"template {name}", exc) from None
    except (jinja2.TemplateError, TypeError, ValueError, Refused) as exc:
        raise _fail(f"template {name}", exc, _lineno(exc)) from None


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
        elif isinstance(v, str):
            result[k] = render_string(env, v, ctx, f"stack.toml {where}.{k}")
        else:
            result[k] = v
    return result
