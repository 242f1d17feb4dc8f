"""The one seam of the commands that work on hosts (devkit/commands/_hosts.py): resolving starts
nothing, every [tool.devkit] provisioning table is validated once, and one address parser reads
every address (the command line's, a table's, a ProxyJump hop's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.commands import _hosts as seam
from devkit.errors import ConfigError, DevkitError
from devkit.provision.engine import hosts


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEVKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.devkit]\n")
    return tmp_path


def test_resolving_the_default_sandbox_host_starts_nothing(project: Path) -> None:
    h = seam.resolve(seam.Selection())
    assert h.sandbox == "sandbox" and [t.name for t in h.targets] == ["sandbox"]
    assert h.targets[0].sandbox  # it is the sandbox host, to be started by whoever needs it
    assert not (project / "state").exists()  # nothing started, nothing written
    with pytest.raises(DevkitError, match="the sandbox host `sandbox` is not running"):
        seam.running(h)


def test_every_hosts_table_is_validated_once_whichever_host_is_asked_for(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.devkit.hosts.vm1]\naddress = "dev@10.0.0.5:2222"\n'
        '[tool.devkit.hosts.vm2]\nbase_dir = "relative/dir"\n'
    )
    with pytest.raises(ConfigError, match=r"tool\.devkit\.hosts\.vm2\.base_dir"):
        seam.resolve(seam.Selection(("vm1",)))  # vm2's table is wrong, though vm1 is asked for


def test_a_table_gives_its_host_an_address_read_by_the_one_parser(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.devkit.hosts.vm1]\naddress = "dev@10.0.0.5:2222"\n'
    )
    [t] = seam.running(seam.resolve(seam.Selection(("vm1",)))).targets
    assert (t.name, t.address) == ("vm1", "dev@10.0.0.5:2222")
    (project / "pyproject.toml").write_text('[tool.devkit.hosts.vm1]\naddress = "dev@@x"\n')
    with pytest.raises(DevkitError, match="is not a host"):
        seam.resolve(seam.Selection(("vm1",)))


def test_the_config_is_read_once_per_resolution(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = []
    real = hosts.load
    monkeypatch.setattr(hosts, "load", lambda *a: loads.append(a) or real(*a))
    (project / "pyproject.toml").write_text('[tool.devkit.provision]\nhosts = ["a", "b", "c"]\n')
    h = seam.resolve(seam.Selection())
    assert [t.name for t in h.targets] == ["a", "b", "c"] and len(loads) == 1
