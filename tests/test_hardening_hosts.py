"""Issue 22 (Hardening III), the host side, where no host is needed: names that become paths,
base dirs, what a dry run plans and prints, timeouts, and the user's ssh config. Each test drives
the real CLI (or its validators, with generated input) and failed before its fix."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit import cli
from devkit.errors import DevkitError
from devkit.provision.ssh import address
from devkit.provision.stack import layout
from devkit.sandbox import state

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = '[tool.devkit.provision]\nstack = "halfstack"\n'


def env_for(tmp: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(tmp / "home"),
        "DEVKIT_STATE_DIR": str(tmp / "state"),
        "DEVKIT_SSH_CONFIG": str(tmp / "ssh_config"),
        "DEVKIT_KNOWN_HOSTS": str(tmp / "known_hosts"),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }


def devkit(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit", *args],
        cwd=tmp, env=env_for(tmp), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def one_line_error(p: subprocess.CompletedProcess[str], text: str) -> None:
    """Exit 2, `devkit: error: ...` naming `text` on its first line, a hint at most, no traceback."""
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert lines[0].startswith("devkit: error: ") and text in lines[0], p.stderr
    assert all(x.startswith("    hint: ") for x in lines[1:]), p.stderr


def files_under(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture
def bed(tmp_path: Path) -> Path:
    """A project with a sandbox state dir holding one sandbox's folder, and decoys beside it."""
    (tmp_path / "home").mkdir()
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    keep = tmp_path / "state" / "sandbox" / "keep"
    keep.mkdir(parents=True)
    (keep / "client_key").write_text("a sandbox's key\n")
    for decoy in (tmp_path / "state" / "decoy", tmp_path / "decoy"):
        decoy.mkdir()
        (decoy / "precious").write_text("the user's\n")
    return tmp_path


# --- 1 (critical): `sandbox down NAME` removed <state>/NAME whatever NAME was -------------------


@pytest.mark.parametrize(
    "name", ["../decoy", "../../decoy", "..", ".", "", "DECOY", "keep/..", "keep\n", "proxy"]
)
def test_down_never_removes_anything_for_a_name_that_is_not_a_sandbox_name(
    bed: Path, name: str
) -> None:
    name = name.replace("DECOY", str(bed / "decoy"))  # an absolute path
    before = files_under(bed)
    p = devkit(bed, "sandbox", "down", name)
    one_line_error(p, f"sandbox name {name!r}")
    assert files_under(bed) == before  # the decoys, the other sandbox and the state dir


def test_up_refuses_a_name_with_a_trailing_newline(bed: Path) -> None:
    # `^...$` with match() let "x\n" through; the bogus isolation stops the run right after the name
    one_line_error(
        devkit(bed, "sandbox", "up", "x\n", "--isolation", "bogus"), "sandbox name 'x\\n'"
    )


def test_a_configured_sandbox_name_is_checked(bed: Path) -> None:
    (bed / "pyproject.toml").write_text(PYPROJECT + '[tool.devkit.sandbox]\nname = "../decoy"\n')
    one_line_error(devkit(bed, "status"), "tool.devkit.sandbox.name: '../decoy' is not a sandbox")


def test_down_says_what_it_removed_and_removes_only_a_sandbox_folder(bed: Path) -> None:
    p = devkit(bed, "sandbox", "down", "keep")  # a folder devkit made (its key), with no record
    assert p.returncode == 0, p.stderr
    assert f"removed {bed / 'state' / 'sandbox' / 'keep'}" in p.stdout
    (bed / "state" / "sandbox" / "mine").mkdir(parents=True)  # not devkit's: no key, no record
    one_line_error(devkit(bed, "sandbox", "down", "mine"), "no sandbox named 'mine'")
    assert (bed / "state" / "sandbox" / "mine").is_dir()


@pytest.mark.parametrize("name", ["..", "-oProxyCommand", "a\n", "a/b", ".hidden", "a b"])
def test_host_names_that_would_be_paths_or_options_are_refused(bed: Path, name: str) -> None:
    one_line_error(devkit(bed, "provision", "--dry-run", "--", name), f"{name!r} is not a host")


def test_stack_secret_and_venv_names_never_leave_the_base_dir(bed: Path) -> None:
    for table, bad in (
        ("[stack]\nname = '..'\n", "stack.name"),
        ("[stack]\nname = 'ok'\n[secrets.'../../x']\n", "secrets"),
        ("[stack]\nname = 'ok'\n[venvs.'..']\npython = 'python3'\n", "venvs"),
    ):
        d = bed / "st"
        d.mkdir(exist_ok=True)
        (d / "stack.toml").write_text(table)
        one_line_error(devkit(bed, "provision", "--dry-run", "--stack", "./st"), bad)


# --- 3: the base dir is a folder of its own -------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    ["/", "/usr", "/etc/", "//var", "~", "~/", "/root", "/home/alice", "relative/dir", "~bob/x",
     "/srv/../etc", "/var/lib/devkit", "~/.devkit", "/proc/self", "/srv/x\n", ""],
)  # fmt: skip
def test_a_base_dir_that_is_not_a_folder_of_its_own_is_refused(bed: Path, base: str) -> None:
    p = devkit(bed, "provision", "--dry-run", "--base-dir", base)
    one_line_error(p, f"--base-dir {base!r}")
    assert "a folder of its own" in p.stderr  # the hint


def test_a_configured_base_dir_is_checked_too(bed: Path) -> None:
    (bed / "pyproject.toml").write_text(PYPROJECT + '[tool.devkit.hosts.vm]\nbase_dir = "/usr"\n')
    one_line_error(devkit(bed, "provision", "--dry-run", "vm"), "tool.devkit.hosts.vm.base_dir")


def test_good_base_dirs_pass() -> None:
    for base in ("~/stacks/{host}", "/srv/devkit/{host}", "/tmp/dk x/b a'se\"/{host}", "/opt/x"):
        assert layout.check_base_dir(base, "--base-dir") == base


def test_the_host_side_check_refuses_the_home_and_what_holds_it() -> None:
    assert "home" in layout.host_base_problem("/data/u", "/data/u", "/data/u")
    assert "holds it" in layout.host_base_problem("/data", "/data", "/data/u")
    assert "system folder" in layout.host_base_problem("/srv/link", "/etc", "/root")
    assert layout.host_base_problem("/srv/st", "/srv/st", "/root") == ""


# --- 10, 11 and the low ones: what a dry run plans and prints ----------------------------------


def test_a_dry_run_with_a_manager_plans_the_asked_hosts_not_the_sandbox(bed: Path) -> None:
    p = devkit(bed, "provision", "--dry-run", "--manager", "127.0.0.1:1", "--format", "json")
    assert "sandbox host is not running" not in p.stdout + p.stderr
    assert [h["host"] for h in json.loads(p.stdout)["hosts"]] == ["127.0.0.1:1"]
    for manager in ("a;b", "h\n", "../x"):
        one_line_error(
            devkit(bed, "provision", "--dry-run", "--manager", manager),
            f"{manager!r} is not a host",
        )


def test_a_dry_run_with_no_sandbox_prints_json_when_asked(bed: Path) -> None:
    p = devkit(bed, "provision", "--dry-run", "--format", "json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    [host] = data["hosts"]
    assert data["ok"] is True and host["host"] == "sandbox" and host["status"] == "planned"
    assert "init:postgres.initdb" in [op["id"] for op in host["ops"]]
    assert "not running" in data["note"]


def test_the_wheelhouse_is_checked_on_the_dry_run_without_a_sandbox(bed: Path) -> None:
    p = devkit(bed, "provision", "--dry-run", "--wheelhouse", str(bed / "nowhere"))
    one_line_error(p, "--wheelhouse")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_timeouts_are_finite(bed: Path, value: str) -> None:
    p = devkit(bed, "provision", "--dry-run", f"--connect-timeout={value}")
    assert p.returncode == 2 and "is not a number of seconds" in p.stderr, p.stderr
    (bed / "pyproject.toml").write_text(PYPROJECT + f"connect_timeout = {value}\n")
    one_line_error(devkit(bed, "provision", "--dry-run"), "connect_timeout: expected a finite")


# --- 14, 15: the user's ssh config ------------------------------------------------------------


def test_ssh_config_write_edits_a_linked_config_in_place(bed: Path) -> None:
    real = bed / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_text("Host old\n  HostName 10.0.0.9\n")
    real.chmod(0o640)
    (bed / "ssh_config").symlink_to(real)
    p = devkit(bed, "ssh-config", "127.0.0.1", "--write")
    assert p.returncode == 0, p.stderr
    assert (bed / "ssh_config").is_symlink()  # still the user's link
    assert (
        real.read_text().splitlines()[1].startswith("Include ") and "Host old" in real.read_text()
    )
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(x.name for x in real.parent.iterdir()) == ["ssh_config"]  # no temp file left


@pytest.mark.parametrize("kind", ["latin-1", "folder", "dangling link"])
def test_ssh_config_write_refuses_a_config_it_cannot_edit_and_writes_nothing(
    bed: Path, kind: str
) -> None:
    cfg = bed / "ssh_config"
    if kind == "latin-1":
        cfg.write_bytes(b"Host caf\xe9\n  HostName 10.0.0.9\n")
    elif kind == "folder":
        cfg.mkdir()
    else:
        cfg.symlink_to(bed / "gone")
    p = devkit(bed, "ssh-config", "127.0.0.1", "--write")
    one_line_error(p, str(cfg))
    assert not (bed / "state").exists() or not (bed / "state" / "ssh_config").exists()
    if kind == "latin-1":
        assert cfg.read_bytes().startswith(b"Host caf\xe9")


# --- property tests: generated names and paths, through the real CLI and its validators --------

NAMEISH = st.lists(
    st.sampled_from([*"ab-._/\n ~", "..", "x", "\x00", "é", "A", "0", "proxy"]), max_size=8
).map("".join)


@contextlib.contextmanager
def in_bed(d: Path) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    env = {k: v for k, v in env_for(d).items() if k.startswith("DEVKIT_") or k == "HOME"}
    cwd = os.getcwd()
    os.chdir(d)
    try:
        with (
            mock.patch.dict(os.environ, env),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            yield out, err
    finally:
        os.chdir(cwd)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=NAMEISH)
def test_down_with_any_name_deletes_nothing_it_did_not_make(bed: Path, name: str) -> None:
    before = files_under(bed)
    with in_bed(bed) as (_, err):
        rc = cli.main(["sandbox", "down", "--", name])
    assert rc == 2, (name, err.getvalue())
    first = err.getvalue().splitlines()[0]
    assert first.startswith("devkit: error: "), first
    # a valid name names no sandbox here; any other is refused as a name
    assert state.valid_name(name) == ("no sandbox" in first), first
    assert files_under(bed) == before


@settings(max_examples=300)
@given(text=NAMEISH)
def test_host_names_are_fullmatched(text: str) -> None:
    try:
        a = address.parse_address(text)
    except DevkitError as exc:
        assert "\n" not in exc.message  # the name is shown quoted: one line whatever it holds
        return
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", a.host), a
    assert not text.endswith("\n") and "/" not in text


BASEISH = st.builds(
    lambda head, parts: head + "/".join(parts),
    st.sampled_from(["/", "~/", "~", "", "//", "rel/", "/home/", "/var/", "/usr/"]),
    st.lists(st.sampled_from(["..", ".", "x", "lib", "devkit", ".devkit", "{host}", "a b", "\n"])),
)


@settings(max_examples=300)
@given(path=BASEISH)
def test_a_base_dir_either_passes_or_is_one_line(path: str) -> None:
    try:
        layout.check_base_dir(path, "--base-dir")
    except DevkitError as exc:
        assert "\n" not in exc.message and exc.hint == layout.BASE_DIR_HINT
        return
    norm = os.path.normpath(path.replace("~", "/home/u", 1))
    assert ".." not in path.split("/") and "\n" not in path and path[:1] in ("/", "~")
    assert norm not in layout.SYSTEM_DIRS and norm != "/home/u" and not norm.startswith("/proc")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=BASEISH)
def test_a_dry_run_with_any_base_dir_creates_nothing(bed: Path, path: str) -> None:
    before = [f for f in files_under(bed) if not f.startswith("home/.cache")]
    with in_bed(bed) as (out, err):
        rc = cli.main(["provision", "--dry-run", f"--base-dir={path}"])
    if layout.base_dir_problem(path):
        assert rc == 2 and err.getvalue().startswith("devkit: error: --base-dir "), err.getvalue()
    else:
        assert rc == 0 and "nothing was started" in out.getvalue(), err.getvalue()
    after = [f for f in files_under(bed) if not f.startswith("home/.cache")]
    assert after == before
