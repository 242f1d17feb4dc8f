"""The reference pages, generated from the code each time the site is built (as pyinfra's
scripts/generate_*_docs.py make its operation and fact pages): nothing generated is committed.

A page holds a line `<!-- devkit-reference: NAME -->` where the generated Markdown goes:

    rules   the rule registry (devkit/conventions/registry.py): code, name, explanation, examples,
            options and each preset's severity
    config  the [tool.devkit] tables (devkit/config_schema.py, and provisioning's in
            devkit/provision/engine/hosts.py), with each preset's defaults
    stack   stack.toml: the parser's own tables (devkit/provision/stack/spec.py), then the group
            each resource kind owns (devkit.provision.kinds.registry.groups())
    cli     every command's usage and options, from the argparse parser devkit.cli.parser() builds
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

from devkit import cli, config_schema
from devkit import schema as s
from devkit.commands.explain import example
from devkit.conventions.registry import RULES, Rule
from devkit.conventions.settings import PRESETS
from devkit.provision.engine import hosts
from devkit.provision.kinds import registry
from devkit.provision.stack import spec, vartypes

MARKER = re.compile(r"^<!-- devkit-reference: (\S+) -->$", re.MULTILINE)


# --- Markdown helpers ------------------------------------------------------------------------------


def code(text: str) -> str:
    """`text` as an inline code span, whatever backticks it holds."""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def block(text: str, lang: str = "text") -> list[str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return [f"{fence}{lang}", *text.splitlines(), fence, ""]


def sentence(text: str) -> str:
    """A schema's phrase as a sentence: capitalised, with a full stop."""
    return text[:1].upper() + text[1:].rstrip(".") + "." if text else ""


def toml(value: Any) -> str:
    """A default as it would be written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + "}"
    return str(value)


# --- the rules -------------------------------------------------------------------------------------

KINDS = {"commit": "Commit messages", "branch": "Branch names", "news": "News fragments"}


def _severity(rule: Rule) -> str:
    by_preset = {name: p.get("rules", {}).get(rule.code, "error") for name, p in PRESETS.items()}
    if len(set(by_preset.values())) == 1:
        return f"Severity: {next(iter(by_preset.values()))} under every preset."
    return "Severity: " + ", ".join(f"{sev} under `{p}`" for p, sev in by_preset.items()) + "."


def _rule(rule: Rule) -> list[str]:
    out = [f"({rule.code.lower()})=", f"### {rule.code} {rule.name}", "", rule.summary, ""]
    out += [f"Why: {rule.why}", ""]
    if rule.bad:
        out += ["Bad:", "", *block(example(rule, rule.bad))]
    out += ["Use instead:", "", *block(example(rule, rule.good))]
    if rule.options:
        keys = ", ".join(f"{{ref}}`{o} <config-{o.split('.')[0]}>`" for o in rule.options)
        out += [f"Options: {keys}.", ""]
    out += [_severity(rule), ""]
    return out


def rules() -> str:
    out: list[str] = []
    for kind, title in KINDS.items():
        mine = [r for r in RULES if r.kind == kind]
        out += [f"## {title}: {mine[0].code}–{mine[-1].code}", ""]
        for rule in mine:
            out += _rule(rule)
    return "\n".join(out)


# --- schema tables (config and stack.toml) ---------------------------------------------------------


def _shown(check: s.Check, value: Any) -> str:
    if value is s.REQUIRED:
        return "required"
    if value is None:
        return "unset"
    show: Callable[[Any], str] = getattr(check, "show", toml)
    return code(show(value))


def _what(check: s.Check) -> str:
    """What a key accepts; for a list of checked items, what each item is."""
    item = getattr(check, "item", None)
    said = s.expects(check)
    if item is not None and not hasattr(item, "keys") and s.expects(item) != "any value":
        said += f" (each {s.expects(item)})"
    return said


def _nested(check: s.Check) -> tuple[str, s.Table] | None:
    """How a key's value nests tables: ("table" | "list" | "names", its table), else None."""
    keys = getattr(check, "keys", None)
    if keys is not None:
        return "table", keys
    item = getattr(check, "item", None)
    inner = getattr(item, "keys", None)
    if inner is not None:
        return ("list" if s.expects(check) == "a list" else "names"), inner
    return None


def _header(path: str, how: str) -> str:
    return {"table": f"[{path}]", "list": f"[[{path}]]", "names": f"[{path}.NAME]"}[how]


def _inner(path: str, how: str) -> str:
    """The dotted path of the keys inside a table shown as `_header(path, how)`."""
    return f"{path}.NAME" if how == "names" else path


def _key_line(key: s.Key, inner: str, preset: dict[str, Any]) -> str:
    nested = _nested(key.check)
    if nested:
        where = code(_header(f"{inner}.{key.name}", nested[0]))
        what = {"table": "a table", "list": "a list of tables", "names": "tables by name"}[
            nested[0]
        ]
        parts = [f"{what}: see {where}"]
    else:
        parts = [_what(key.check)]
    if key.default is s.REQUIRED:
        parts.append("required")
    elif not nested and key.default not in (None, {}):
        parts.append("default " + _shown(key.check, key.default))
    for name, values in preset.items():
        if key.name in values and values[key.name] != key.default:
            parts.append(f"`{name}` preset: " + _shown(key.check, values[key.name]))
    doc = f": {key.doc}" if key.doc else ""
    return f"- {code(key.name)} ({'; '.join(parts)}){doc}"


def _table(
    path: str,
    how: str,
    table: s.Table,
    level: int,
    about: str = "",
    preset: dict[str, Any] | None = None,
    label: str = "",
) -> Iterator[str]:
    """A table's section, then the sections of the tables its keys hold."""
    if label:
        yield f"({label})="
    yield f"{'#' * level} {code(_header(path, how))}"
    yield ""
    if about:
        yield about
        yield ""
    inner = _inner(path, how)
    for key in table:
        yield _key_line(key, inner, preset or {})
    yield ""
    for key in table:
        nested = _nested(key.check)
        if nested:
            yield from _table(f"{inner}.{key.name}", nested[0], nested[1], min(level + 1, 4))


def _presets(table: str) -> dict[str, dict[str, Any]]:
    """The presets' own defaults for a [tool.devkit] table (the conventional one's are the keys')."""
    return {
        name: p[table] for name, p in PRESETS.items() if name != "conventional" and p.get(table)
    }


CONFIG_ABOUT = {
    "commit": "Commit messages (`devkit check commit`, titles, `devkit ci`).",
    "branch": "Branch names (`devkit check branch`).",
    "news": "News fragments (`devkit check news`); their types, folder and names come from "
    "`[tool.towncrier]`.",
    "ci": "`devkit ci`.",
    "lint": "`devkit lint`.",
    "init": "`devkit init`.",
    "provision": "Provisioning: every command that works on hosts.",
    "sandbox": "The sandbox host `devkit provision` starts when no host is named.",
}


def config() -> str:
    top = s.Table(*(k for k in config_schema.TOP if k.name in ("preset", "rules")))
    out = list(
        _table(
            "tool.devkit",
            "table",
            top,
            2,
            "The table itself; each of the tables below is a key of it.",
            label="config-tool-devkit",
        )
    )
    tables = {
        "commit": config_schema.COMMIT,
        "branch": config_schema.BRANCH,
        "news": config_schema.NEWS,
        **config_schema.SECTIONS,
        "provision": hosts.PROVISION,
        "sandbox": hosts.SANDBOX,
    }
    for name, table in tables.items():
        out += _table(
            f"tool.devkit.{name}",
            "table",
            table,
            2,
            CONFIG_ABOUT.get(name, ""),
            _presets(name),
            label=f"config-{name}",
        )
    out += _table(
        "tool.devkit.hosts",
        "names",
        hosts.HOST,
        2,
        "One host's settings; the table's name is the host's name on the command line (an "
        "ssh_config alias or a sandbox's name).",
        label="config-hosts",
    )
    known = set(tables) | {"preset", "rules", "hosts"}
    missing = set(config_schema.TOP.names) - known
    if missing:  # a table added to the schema without a place here
        raise ExtensionError(f"the [tool.devkit] reference misses {sorted(missing)}")
    return "\n".join(out)


def _merge(group: spec.Group) -> str:
    if group.merge is spec.overlay:
        return "A stack that extends another replaces this group when it has one."
    if group.merge is spec.concat:
        return "A stack that extends another adds its items after the other's."
    return "A stack that extends another adds its names; a name both have is its own."


def stack() -> str:
    out = list(_table("stack", "table", spec.HEAD, 2, label="stack-head"))
    out += ["(stack-vars)=", "## `[vars]`", "", sentence(spec.STACK[1].doc), ""]
    out += ["(stack-types)=", "## `[types]`", "", sentence(spec.STACK[2].doc.split(" (")[0]), ""]
    out += [f"- {code(name)}: {about}" for name, (_, about) in vartypes.TYPES.items()]
    out += [""]
    out += _table(
        "services", "names", spec.SERVICE, 2, spec.STACK[3].doc + ".", label="stack-services"
    )
    out += _table("platform", "names", spec.PLATFORM, 2, spec.STACK[4].doc + ".")
    parser_keys = set(spec.STACK.names)
    for group in registry.groups():
        owner = next(k for k in registry.KINDS if k.GROUP is group)
        nested = _nested(group.schema)
        if nested is None:
            raise ExtensionError(f"the [{group.key}] group has no schema (Group.schema)")
        if group.key in parser_keys:
            raise ExtensionError(f"[{group.key}] is both the parser's and a kind's")
        about = (
            f"{sentence(group.doc)} Owned by the `{owner.NAME}` kind "
            f"(`devkit/provision/kinds/{owner.__name__.rsplit('.', 1)[1]}.py`). {_merge(group)}"
        )
        out += _table(group.key, nested[0], nested[1], 2, about, label=f"stack-{group.key}")
    return "\n".join(out)


# --- the command line ------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(action.option_strings) or str(action.metavar or action.dest)
        if action.option_strings and action.nargs != 0:
            choices = "{" + ",".join(map(str, action.choices or ())) + "}"
            name += " " + str(
                action.metavar or (choices if action.choices else action.dest.upper())
            )
        bits = [action.help or ""]
        if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
            bits.append("default " + code(str(action.default)))
        out.append(f"- {code(str(name))}: " + "; ".join(b for b in bits if b))
    return out


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line, on one line (argparse wraps it at the terminal's width)."""
    return " ".join(parser.format_usage().removeprefix("usage: ").split())


def _command(prog: str, parser: argparse.ArgumentParser, level: int) -> Iterator[str]:
    words = _subparsers(parser)
    if not words:
        yield f"{'#' * level} `{prog}`"
        yield ""
        yield parser.description or ""
        yield ""
        yield from block(_usage(parser))
        yield from _options(parser)
        yield ""
        return
    for word, sub in words.items():
        yield from _command(f"{prog} {word}", sub, level)


def command_line() -> str:
    parser = cli.parser()
    out = ["## `devkit`", "", *block(_usage(parser))]
    out += [*_options(parser), ""]
    out += list(_command("devkit", parser, 2))
    return "\n".join(out)


# --- the extension ---------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[], str]] = {
    "rules": rules,
    "config": config,
    "stack": stack,
    "cli": command_line,
}


def fill(app: Sphinx, docname: str, source: list[str]) -> None:
    def generated(m: re.Match[str]) -> str:
        make = GENERATORS.get(m[1])
        if make is None:
            raise ExtensionError(f"{docname}: no reference generator {m[1]!r}")
        return make()

    source[0] = MARKER.sub(generated, source[0])


def outdated(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list:
    """The generated pages are read again on every build: the code may have changed since."""
    return sorted(
        name
        for name in env.found_docs - removed
        if MARKER.search(Path(env.doc2path(name)).read_text(encoding="utf-8"))
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", fill)
    app.connect("env-get-outdated", outdated)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
