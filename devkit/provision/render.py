"""Jinja2 for stack templates: StrictUndefined, trailing newline kept, no autoescape.

Every render error becomes one DevkitError naming the template (or stack.toml key) and the line,
raised while planning, so nothing is written when a variable is undefined.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import jinja2

from devkit.errors import DevkitError


def dq(value: Any) -> str:
    """A double-quoted string with backslash escapes (redis.conf, supervisord environment=, YAML)."""
    return json.dumps(str(value))


def sq(value: Any) -> str:
    """A single-quoted string with '' doubling (postgresql.conf, SQL literals)."""
    return "'" + str(value).replace("'", "''") + "'"


def environment(stack_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(stack_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(q=lambda v: shlex.quote(str(v)), dq=dq, sq=sq)
    return env


def _fail(where: str, exc: Exception, lineno: int | None = None) -> DevkitError:
    line = f" line {lineno}" if lineno else ""
    if isinstance(exc, jinja2.UndefinedError):
        return DevkitError(
            f"{where}{line}: undefined variable: {exc.message}",
            "Define it under [vars] in stack.toml, per host in [tool.devkit.hosts.NAME.vars], "
            "or with --set NAME=VALUE.",
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
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise _fail(where, exc) from None


def render_file(env: jinja2.Environment, name: str, ctx: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(ctx)
    except jinja2.TemplateSyntaxError as exc:
        raise _fail(f"template {name}", exc) from None
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise _fail(f"template {name}", exc, _lineno(exc)) from None


def resolve_vars(
    env: jinja2.Environment, variables: dict[str, Any], engine: dict[str, Any], prefix: str = "vars"
) -> dict[str, Any]:
    """Render string variables that reference others (`run_as = "{{ user }}"`), a few passes deep."""
    out = variables
    for _ in range(4):
        ctx = {**out, **engine}
        out = _render_tree(env, out, ctx, prefix)
    return out


def _render_tree(
    env: jinja2.Environment, node: dict[str, Any], ctx: dict[str, Any], where: str
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for k, v in node.items():
        if isinstance(v, dict):
            result[k] = _render_tree(env, v, ctx, f"{where}.{k}")
        elif isinstance(v, str):
            result[k] = render_string(env, v, ctx, f"stack.toml {where}.{k}")
        else:
            result[k] = v
    return result
