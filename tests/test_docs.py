"""The docs: the site builds with warnings as errors, the reference pages hold what the code has,
the architecture page is true, README.md is the front door, and every example that shows output
is run here or claimed by the test that produces it (tests/docs_examples.py)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import docs_examples
from tests.test_imports import WINGS

ROOT = docs_examples.ROOT
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_LIMIT = 12 * 1024  # bytes: the front door, not the manual


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as CI builds it: warnings are errors, every reference must resolve, nothing is
    fetched (no intersphinx)."""
    pytest.importorskip(
        "sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'"
    )
    out = tmp_path_factory.mktemp("site")
    doctrees = str(out / ".doctrees")
    argv = ["-W", "--keep-going", "-n", "-q", "-b", "html", "-d", doctrees, str(DOCS), str(out)]
    r = subprocess.run(
        [sys.executable, "-m", "sphinx", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def text_of(page: Path) -> str:
    """A built page's article as plain text."""
    import html

    body = page.read_text(encoding="utf-8")
    body = body[body.index("<article") : body.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def test_the_site_builds_with_warnings_as_errors(site: Path) -> None:
    for page in ("index", "tutorial/dev-stack", "reference/cli", "explanation/architecture"):
        assert (site / f"{page}.html").is_file(), page


def test_the_rule_reference_has_every_rule_of_the_registry(site: Path) -> None:
    from devkit.conventions.registry import RULES

    text = text_of(site / "reference" / "rules.html")
    for rule in RULES:
        assert f"{rule.code} {rule.name}" in text, rule.code
        assert rule.summary.replace("`", "") in text, rule.code


def test_the_cli_reference_has_every_command_and_option(site: Path) -> None:
    import argparse

    from devkit import cli

    text = text_of(site / "reference" / "cli.html")
    for words in cli.COMMANDS:
        assert f"devkit {' '.join(words)}" in text, words
    parser = cli.parser()
    options = {
        opt
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
        for a in sub._actions
        for opt in a.option_strings
    }
    assert {"--format", "--config", "--stack", "--set"} & options
    for opt in options:
        assert opt in text, opt


def test_the_config_reference_has_every_key(site: Path) -> None:
    from devkit import config_schema
    from devkit.provision.engine import hosts

    text = text_of(site / "reference" / "configuration.html")
    tables = {
        "commit": config_schema.COMMIT,
        "branch": config_schema.BRANCH,
        "news": config_schema.NEWS,
        **config_schema.SECTIONS,
        "provision": hosts.PROVISION,
        "sandbox": hosts.SANDBOX,
        "hosts.NAME": hosts.HOST,
    }
    for name, table in tables.items():
        assert f"[tool.devkit.{name}]" in text, name
        for key in table:
            assert key.doc, f"tool.devkit.{name}.{key.name} says nothing about itself"
            assert f"{key.name} (" in text, f"tool.devkit.{name}.{key.name}"


def test_the_stack_reference_has_every_group_each_kind_owns(site: Path) -> None:
    from devkit.provision.kinds import registry

    text = text_of(site / "reference" / "stack-toml.html")
    for header in ("[stack]", "[services.NAME]", "[services.NAME.program]", "[platform.NAME]"):
        assert header in text, header
    for group in registry.groups():
        assert group.doc, f"[{group.key}] says nothing about itself"
        assert re.search(rf"\[\[?{re.escape(group.key)}(\.NAME)?\]\]?", text), group.key
        for key in _table_of(group.schema):
            assert f"{key.name} (" in text, f"{group.key}.{key.name}"


def _table_of(check: object) -> tuple:
    keys = getattr(check, "keys", None) or getattr(getattr(check, "item", None), "keys", None)
    assert keys is not None, "a group's schema is a table, a list of tables or tables by name"
    return tuple(keys)


def test_cli_parser_is_the_whole_command_line() -> None:
    from devkit import cli

    parser = cli.parser()
    args = parser.parse_args(["check", "commit", "-m", "feat: x"])
    assert args.message == ["feat: x"] or args.message == "feat: x"
    args = parser.parse_args(["provision", "vm1", "--set", "a.b=1", "--dry-run"])
    assert args.hosts == ["vm1"] and args.set == ["a.b=1"] and args.dry_run


# --- the architecture page ------------------------------------------------------------------------

ARCHITECTURE = DOCS / "explanation" / "architecture.md"


def _tree(text: str) -> list[str]:
    """The paths the page's map draws (the `text` block under "## The map"), in order: each line
    whose first word ends in `/` or `.py`, under the entry it is indented beneath."""
    section = text.split("## The map", 1)[1]
    block = section.split("```text\n", 1)[1].split("\n```", 1)[0]
    paths: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        word = line.split()[0] if line.strip() else ""
        if not (word.endswith("/") or word.endswith(".py")):
            continue  # a description's next line
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (stack[-1][1] if stack else "") + word
        paths.append(path)
        if word.endswith("/"):
            stack.append((indent, path))
    return paths


def test_the_architecture_page_names_only_modules_and_packages_that_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    drawn = _tree(text)
    assert drawn[0] == "devkit/" and len(drawn) > 20, drawn
    named = re.findall(r"`((?:devkit|tests|templates|scripts|bench)/[^`\s]*)`", text)
    for path in [*drawn, *named]:
        where = ROOT / path
        if not path.endswith("/"):
            there = where.is_file()
        elif path.startswith("devkit/"):
            there = (where / "__init__.py").is_file()  # a package, not any folder
        else:
            there = where.is_dir()
        assert there, f"{ARCHITECTURE.relative_to(ROOT)} names {path}, which is not there"


def test_the_architecture_page_draws_the_wings_the_import_test_enforces() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    drawn = [
        p.removeprefix("devkit/provision/").rstrip("/")
        for p in _tree(text)
        if re.fullmatch(r"devkit/provision/[a-z]+/", p)
    ]
    assert tuple(drawn) == WINGS, f"the map draws {drawn}, tests/test_imports.py enforces {WINGS}"
    listed = re.findall(r"^\d+\. `([a-z]+)/`", text.split("## Provisioning's wings", 1)[1], re.M)
    assert tuple(listed) == WINGS, (
        f"the list reads {listed}, tests/test_imports.py enforces {WINGS}"
    )


# --- README.md ---------------------------------------------------------------------------------------


def test_the_readme_is_a_front_door() -> None:
    text = README.read_text(encoding="utf-8")
    size = len(text.encode())
    assert size <= README_LIMIT, f"README.md is {size} bytes: move the detail into docs/"
    assert "bash .ci/setup && .venv/bin/devkit provision" in text
    assert "bash .ci/setup && .venv/bin/python -m pytest" in text
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", text)
    assert links, "the README links into the site"
    for link in links:
        assert (ROOT / link).is_file(), f"README.md links to {link}, which is not there"


def _subparsers(parser):  # type: ignore[no-untyped-def]
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subs[0].choices if subs else {}


def test_the_readme_names_only_commands_and_options_that_exist() -> None:
    """Every `devkit ...` the README's command table shows is a command of the parser with those
    options; its next step after `devkit init` is the one init and doctor print."""
    from devkit import cli
    from devkit.hooks import NEXT_STEP

    text = README.read_text(encoding="utf-8")
    top = cli.parser()
    shown = [
        usage
        for row in re.findall(r"^\| (.+?) \| ", text, re.MULTILINE)
        for usage in re.findall(r"`(devkit [^`]+)`", row)
    ]
    assert len(shown) >= 12, shown
    for usage in shown:
        words = usage.replace("\\|", " ").split()[1:]
        parser, i = top, 0
        while i < len(words) and words[i] in _subparsers(parser):
            parser, i = _subparsers(parser)[words[i]], i + 1
        assert i, f"README.md: `{usage}` names no command"
        known = {o for a in parser._actions for o in a.option_strings}
        options = {w.strip("[]") for w in words[i:] if w.strip("[]").startswith("-")}
        assert options <= known, f"README.md: `{usage}`: no such option {options - known}"
    # the same words as `devkit init` and `devkit doctor` (the README wraps lines anywhere)
    assert " ".join(f"Next: {NEXT_STEP}".split()) in " ".join(text.split())


# --- the examples ------------------------------------------------------------------------------------

EXAMPLES = docs_examples.examples()
RUN = [ex for ex in EXAMPLES if not ex.key]
CLAIMED = [ex for ex in EXAMPLES if ex.key]


@pytest.mark.parametrize("ex", RUN, ids=[ex.where for ex in RUN])
def test_an_example_shows_what_devkit_prints(ex: docs_examples.Example, tmp_path: Path) -> None:
    outputs = docs_examples.run(ex, tmp_path)
    for step, actual in zip(ex.steps, outputs, strict=True):
        assert docs_examples.matches(step.output, actual), (
            f"{ex.where}: `$ {step.command}` shows\n{step.output}\n\nbut prints\n{actual}"
        )


@pytest.mark.parametrize("ex", CLAIMED, ids=[ex.where for ex in CLAIMED])
def test_a_claimed_example_is_compared_by_the_test_it_names(ex: docs_examples.Example) -> None:
    """The test a claim names exists and passes the example's key to a call (compare, or a
    helper of its file that calls it), so that the claim cannot outlive the comparison."""
    file, _, name = ex.test.partition("::")
    path = ROOT / file
    assert path.is_file(), f"{ex.where}: {file} does not exist"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
    assert funcs, f"{ex.where}: {file} has no test {name}"
    keys = {
        arg.value
        for call in ast.walk(funcs[0])
        if isinstance(call, ast.Call)
        for arg in call.args
        if isinstance(arg, ast.Constant)
    }
    assert ex.key in keys, f"{ex.where}: {ex.test} compares no example {ex.key!r}"
    assert "docs_examples" in path.read_text(encoding="utf-8"), f"{file} never compares"


def test_examples_are_claimed_once_and_every_block_with_output_is_an_example() -> None:
    keys = [ex.key for ex in CLAIMED]
    assert len(keys) == len(set(keys)), f"a key claimed twice: {keys}"
    assert RUN and CLAIMED
    for page in docs_examples.pages():
        for block in docs_examples.blocks(page):
            shows = any(line.startswith("$ ") for line in block.text.splitlines())
            where = f"{page.relative_to(ROOT)}:{block.line}"
            assert block.info == "console" or not shows, (
                f"{where}: a transcript outside a ```console block is never checked"
            )
            if "example" in block.before and block.info != "console":
                raise AssertionError(f"{where}: an example comment before a non-console block")


def test_ellipsis_stands_for_any_text_and_a_line_of_it_for_any_lines() -> None:
    m = docs_examples.matches
    assert m("a\n...\nb", "a\nb") and m("a\n...\nb", "a\nx\ny\nb") and m("a\n...", "a")
    assert m("pid ... ok", "pid 4202 ok") and m("x  \n\n", "x")
    assert not m("a\nb", "a\nc") and not m("a ... b", "a x c")
