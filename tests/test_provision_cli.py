"""`devkit provision` and friends as a user runs them, where no host is needed: a dry run with no
sandbox yet changes nothing anywhere; bad input is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def devkit(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "DEVKIT_STATE_DIR": str(tmp_path / "state"),
        "DEVKIT_SSH_CONFIG": str(tmp_path / "ssh_config"),
        "DEVKIT_KNOWN_HOSTS": str(tmp_path / "known_hosts"),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "devkit", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_dry_run_without_a_sandbox_starts_nothing_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "halfstack"\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    r = devkit(tmp_path, "provision", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the sandbox host is not running: `devkit provision` would start it" in r.stdout
    assert "init:postgres.initdb" in r.stdout and "nothing was started" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no state dir, no ssh_config
    # nothing in the home but the compiled-template cache
    home = tmp_path / "home"
    written = [p.relative_to(home) for p in home.rglob("*") if not p.is_dir()]
    assert written and all(p.parent == Path(".cache/devkit/templates") for p in written)


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "halfstack"\n')
    r = devkit(tmp_path, "provision", "--dry-run", "--set", "redis.port=http")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "variable `redis.port`" in r.stderr and "a TCP port" in r.stderr
    r = devkit(tmp_path, "provision", "--dry-run", "--set", "redsi.port=1")
    assert r.returncode == 2 and "Did you mean `redis.port`?" in r.stderr


def test_a_value_a_file_cannot_hold_is_refused_at_plan_time_in_one_line(tmp_path: Path) -> None:
    """Issue 22, items 6 and 13: refused while planning, before a sandbox or host is touched."""
    (tmp_path / "home").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.devkit.provision]\nstack = "backend.ai"\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    r = devkit(tmp_path, "provision", "--dry-run", "--set", "admin.email=a\n$(id)")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert r.stderr.startswith(
        "devkit: error: template env-local-admin-session.sh.j2 line 1: variable `admin.email` "
        "has a newline, which a shell file cannot hold\n"
    ), r.stderr
    assert "--set admin.email=VALUE" in r.stderr
    r = devkit(tmp_path, "provision", "--dry-run", "--stack", "halfstack", "--base-dir", "/x% ;y")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("devkit: error: supervisor/supervisord.conf: the base dir has ")
    assert "so it cannot be written from %(here)s either" in first and "--base-dir" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no state dir, no ssh_config
