"""devkit's one managed ssh_config: Included once from the user's, shared by the sandboxes and
`ssh-config --write`, and taken back without a trace (local files; OpenSSH itself reads them in
tests/editloop)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.provision.ssh import sshconf

USER = "Host mine\n  HostName example.invalid\n  User someone\n\nHost *\n  ServerAliveInterval 30\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEVKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DEVKIT_SSH_CONFIG", str(tmp_path / "dot-ssh" / "config"))
    return tmp_path


def user_config(home: Path) -> Path:
    return home / "dot-ssh" / "config"


def test_writing_twice_adds_one_include_and_leaves_the_users_entries_as_they_were(
    home: Path,
) -> None:
    cfg = user_config(home)
    cfg.parent.mkdir(mode=0o700)
    cfg.write_text(USER)
    cfg.chmod(0o644)
    assert sshconf.write_host("vm", "Host vm\n  HostName 10.0.0.5")
    first = cfg.read_text()
    assert not sshconf.write_host("vm", "Host vm\n  HostName 10.0.0.5")
    assert cfg.read_text() == first == f"{sshconf.MARK}\n{sshconf.include_line()}\n\n{USER}"
    assert cfg.stat().st_mode & 0o777 == 0o644
    managed = sshconf.managed_file().read_text()
    assert managed.count("Host vm\n") == 1 and "Include" not in managed.split("\n", 1)[1]
    assert sshconf.write_host("vm", "Host vm\n  HostName 10.0.0.6")  # replaced, not added
    assert "10.0.0.5" not in sshconf.managed_file().read_text()
    assert sshconf.remove_host("vm")
    assert cfg.read_text() == USER  # the last block gone: the Include goes too
    assert not sshconf.managed_file().exists() and not (home / "state" / "ssh_config.json").exists()


def test_sandboxes_and_written_hosts_share_the_one_include(home: Path) -> None:
    sshconf.set_sandboxes(True)
    sshconf.write_host("vm", "Host vm-tunnel\n  HostName 10.0.0.5")
    text = user_config(home).read_text()
    assert text.count("Include") == 1
    managed = sshconf.managed_file().read_text()
    assert f"Include {home}/state/sandbox/*/ssh_config" in managed and "Host vm-tunnel" in managed
    sshconf.set_sandboxes(False)  # the last sandbox goes: the host's blocks stay
    assert "Host vm-tunnel" in sshconf.managed_file().read_text()
    assert "sandbox/*" not in sshconf.managed_file().read_text()
    sshconf.remove_host("vm")
    # devkit made ~/.ssh and its config for this: both go again
    assert not user_config(home).exists() and not user_config(home).parent.exists()


def test_an_include_the_sandbox_wrote_before_is_replaced_not_doubled(home: Path) -> None:
    cfg = user_config(home)
    cfg.parent.mkdir()
    old = f"{sshconf.OLD_MARK}\nInclude {home}/state/sandbox/*/ssh_config\n\n"
    cfg.write_text(old + USER)
    sshconf.set_sandboxes(True)
    assert cfg.read_text() == f"{sshconf.MARK}\n{sshconf.include_line()}\n\n{USER}"
    sshconf.set_sandboxes(False)
    assert cfg.read_text() == USER


def test_who_already_defines_a_host(home: Path) -> None:
    cfg = user_config(home)
    cfg.parent.mkdir()
    extra = home / "dot-ssh" / "work.conf"
    extra.write_text("Host dev-*\n  User me\nHost !secret.corp *.corp\n")
    cfg.write_text(f"Include {extra}\n" + USER)
    assert sshconf.defined_elsewhere("mine") == f"{cfg}:2"
    assert sshconf.defined_elsewhere("dev-box") == f"{extra}:1"
    assert sshconf.defined_elsewhere("db.corp") == f"{extra}:3"
    assert sshconf.defined_elsewhere("secret.corp") == ""  # negated
    assert sshconf.defined_elsewhere("other") == ""  # `Host *` alone does not count
    sshconf.write_host("other", "Host other\n  HostName 10.0.0.7")
    assert sshconf.defined_elsewhere("other") == ""  # devkit's own block is not "elsewhere"
