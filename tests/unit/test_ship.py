"""Code shipped to a host as one script (ssh/ship.py): it runs under `python3 -I -S` with nothing but
the standard library, its modules import each other as they do here, and its output is the same as
the unshipped modules'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devkit.provision.onhost.edit import report, rules
from devkit.provision.ssh import ship

RULES = {
    "services": {"alpha": ["src/alpha/**"]},
    "notes": [{"paths": ["docs/**"], "note": "nothing restarts"}],
    "order": ["alpha"],
}


def test_the_edit_script_is_one_file_that_runs_with_only_the_standard_library(
    tmp_path: Path,
) -> None:
    script = tmp_path / "devkit-edit.py"
    script.write_text(ship.edit_script())
    # no arguments: its usage, from the shipped cli module, with devkit nowhere on the path
    p = subprocess.run(
        [sys.executable, "-I", "-S", str(script)], cwd=tmp_path, capture_output=True, text=True
    )
    assert p.returncode == 2 and "usage: devkit-edit.py" in p.stderr, p.stderr
    # a look at a place with no stack: the shipped lookup answers in JSON, as the CLI reads it
    req = json.dumps({"base": str(tmp_path / "nothing"), "host": "vm", "stack": ""})
    p = subprocess.run(
        [sys.executable, "-I", "-S", "-c", ship.edit_script(), "changed", req],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "no provisioned stack with an edit loop" in json.loads(p.stdout)["error"], p.stderr


def test_exec_gives_another_shipped_script_the_entry_modules_names() -> None:
    ns: dict[str, object] = {"__name__": "devkit_edit"}
    code = "import sys\nexec(SCRIPT, NS)\nprint(NS['located'].__module__)\n"
    p = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"SCRIPT = {ship.edit_script()!r}\nNS = {ns!r}\n" + code,
        ],
        capture_output=True,
        text=True,
    )
    assert p.stdout.strip() == "devkit.provision.onhost.edit.find", p.stderr


def test_shipped_and_local_modules_decide_the_same() -> None:
    files = {"src/alpha/x.py": 105.0, "docs/a.md": 105.0}
    here = rules.decide(files, {"alpha": 100.0}, {}, RULES)
    code = (
        "import json, sys\n"
        "from devkit.provision.onhost.edit import rules\n"
        f"print(json.dumps(rules.decide({files!r}, {{'alpha': 100.0}}, {{}}, {RULES!r})))\n"
    )
    loader = ship.edit_script().replace('if __name__ == "__main__":', "if False:")
    p = subprocess.run(
        [sys.executable, "-I", "-S", "-c", loader + code], capture_output=True, text=True
    )
    assert json.loads(p.stdout) == json.loads(json.dumps(here)), p.stderr
    assert report.describe({"restarted": []}) == [
        "nothing to restart: no service's files changed since it started"
    ]
