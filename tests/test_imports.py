"""The hook paths import only the standard library and the core."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "fabric",
    "paramiko",
    "invoke",
    "jinja2",
    "click",
    "rich",
    "towncrier",
    "tomlkit",
    "importlib.metadata",
)
# standard-library modules that cost a hook run several ms each; the hook paths avoid them
SLOW_STDLIB = ("typing", "argparse", "subprocess", "pathlib")

PROBE = """
import sys, io, contextlib
from devkit.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main({argv!r})
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r} or m == 'importlib.metadata')
# tomllib is read once per change of pyproject.toml; the parsed table is cached in .git
heavy += sorted(m for m in sys.modules if m in {slow!r})
print(rc, ','.join(heavy))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "commit", "-m", "feat: x"],
        ["check", "commit", "MSGFILE"],
        ["check", "branch", "feat/x"],
        ["check", "branch"],
        ["--help"],
        ["explain", "CM003"],
    ],
)
def test_hook_paths_stay_light(argv: list[str], tmp_path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "pyproject.toml").write_text('[tool.devkit]\npreset = "backend.ai"\n')
    msg = tmp_path / "COMMIT_EDITMSG"
    msg.write_text("feat: x\n# comment\n")
    argv = [str(msg) if a == "MSGFILE" else a for a in argv]
    hook = argv[0] == "check"
    slow = SLOW_STDLIB if hook else ()
    code = PROBE.format(argv=argv, heavy=tuple(h for h in HEAVY if "." not in h), slow=slow)
    subprocess.run(
        [sys.executable, "-m", "devkit", "check", "commit", "-m", "feat: x"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )  # a first run parses pyproject.toml and caches the table
    # without coverage's subprocess hook (it loads modules a real hook run never sees)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    )
    _, _, heavy = out.stdout.strip().partition(" ")
    assert heavy == "", f"{argv} imported {heavy}"


def test_core_imports_no_edge_modules() -> None:
    """The conventions core is pure: it imports no git / process / file edge and no third-party package."""
    import ast
    from pathlib import Path

    import devkit.conventions

    core = Path(devkit.conventions.__file__).parent
    allowed_devkit = {"devkit.conventions", "devkit.violations", "devkit.record"}
    for f in core.glob("*.py"):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                if n.startswith("devkit"):
                    assert any(n == a or n.startswith(a + ".") for a in allowed_devkit), (
                        f"{f.name} imports {n}"
                    )
                else:
                    assert n.split(".")[0] in sys.stdlib_module_names or n == "__future__", (
                        f"{f.name} imports {n}"
                    )


ROOT = Path(__file__).resolve().parents[1] / "devkit"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every devkit module a module imports, by any import: at module level, inside functions,
    for type checking only, and the packages (their __init__) each import goes through."""
    import ast

    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        for t in targets:
            parts = t.split(".")
            out |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    own = {".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 1)}
    return out & known - {name} - own  # a module's own packages load before it, not by it


def test_devkit_has_no_import_cycle() -> None:
    mods = _modules()
    graph = {m: _imports(f, m, set(mods)) for m, f in mods.items()}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for n in sorted(graph[m]):
            assert seen.get(n) != 1, "import cycle: " + " -> ".join([*path, m, n])
            if n not in seen:
                visit(n, [*path, m])
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m, [])


# provisioning's wings, top to bottom: each imports only the wings below it (any kind of import);
# devkit.sandbox, a peer, imports none but ssh/ (devkit's ssh_config file)
WINGS = ("editloop", "engine", "kinds", "transfer", "stack", "ssh", "onhost")


def _wing(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["devkit", "sandbox"]:
        return "sandbox"
    if parts[:2] == ["devkit", "provision"] and len(parts) > 2:
        return parts[2]
    return None


def test_provision_wings_import_only_the_wings_below_them() -> None:
    mods = _modules()
    for m, f in mods.items():
        w = _wing(m)
        if w is None or m == "devkit.provision":
            continue
        assert w in (*WINGS, "sandbox"), f"{m}: not in a wing"
        for n in _imports(f, m, set(mods)):
            v = _wing(n)
            if v is None or v == w or n == "devkit.provision":
                continue
            if w == "sandbox":
                assert v == "ssh", f"{m} imports {n}"
            else:
                assert v != "sandbox", f"{m} imports {n}: provisioning never starts a sandbox"
                assert WINGS.index(v) > WINGS.index(w), f"{m} ({w}/) imports {n} ({v}/)"


def test_the_code_shipped_to_hosts_is_standard_library_only() -> None:
    """onhost/ runs on the host under `python3 -I -S`: nothing but the standard library."""
    import ast

    for f in (ROOT / "provision" / "onhost").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{f.name}: a relative import cannot be shipped"
                names = [node.module or ""]
            for n in names:
                shipped = n.startswith("devkit.provision.onhost.")  # shipped beside it
                top = n.split(".")[0]
                assert shipped or top in sys.stdlib_module_names or n == "__future__", (
                    f"{f.name} imports {n}"
                )
