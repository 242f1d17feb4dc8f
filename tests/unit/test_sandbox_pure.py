"""The pure parts of the isolated sandbox: apt sources, cgroup mounts, the proxy's allow-list.

The sandboxes themselves run for real in tests/sandbox/; these cover inputs this machine does not
have (an Ubuntu host, a pure cgroup v2 host, co-mounted controllers, a pip mirror).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devkit import debootstrap
from devkit.errors import DevkitError
from devkit.sandbox import cgroups, proxy, rootfs

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_mirrors_come_from_the_machines_debian_sources() -> None:
    m = debootstrap.mirrors(
        [
            ("google.list", "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"),
            ("debian.sources", DEB822),
            (
                "nodesource.sources",
                "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n",
            ),
        ]
    )
    assert m == debootstrap.Mirrors(
        "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
    )
    assert m.hosts() == ["deb.debian.org"]


def test_one_line_sources_with_options_and_a_local_mirror() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] https://mirror.example.org/debian/ bookworm main\n"
        "deb http://security.example.org/debian-security bookworm-security main\n"
    )
    m = debootstrap.mirrors([("sources.list", text)])
    assert m == debootstrap.Mirrors(
        "https://mirror.example.org/debian", "http://security.example.org/debian-security"
    )
    assert m.hosts() == ["mirror.example.org", "security.example.org"]


def test_an_ubuntu_machine_falls_back_to_debians_own_archive() -> None:
    text = "deb http://archive.ubuntu.com/ubuntu noble main\ndeb http://security.ubuntu.com/ubuntu noble-security main\n"
    assert debootstrap.mirrors([("sources.list", text)]) == debootstrap.Mirrors(
        debootstrap.ARCHIVE, debootstrap.SECURITY
    )


def test_sources_inside_a_sandbox_name_its_release_updates_and_security() -> None:
    text = rootfs.sources_text(
        "trixie", debootstrap.Mirrors("http://m/debian", "http://m/debian-security")
    )
    assert "URIs: http://m/debian\nSuites: trixie trixie-updates\n" in text
    assert "URIs: http://m/debian-security\nSuites: trixie-security\n" in text


def test_an_unknown_release_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(DevkitError) as e:
        rootfs.check_release("sid")
    assert (
        str(e.value)
        == "sandbox: unknown release `sid`: devkit's sandboxes know bookworm (Debian 12), trixie (Debian 13)"
    )


def test_the_cache_key_changes_with_the_release_mirror_and_cas(tmp_path: Path) -> None:
    m = debootstrap.Mirrors("http://a/debian", "http://a/debian-security")
    ca = tmp_path / "corp.crt"
    ca.write_text("one")
    key = rootfs.cache_key("bookworm", "amd64", m, [ca])
    assert re.fullmatch(r"bookworm-amd64-[0-9a-f]{10}", key)
    assert key == rootfs.cache_key("bookworm", "amd64", m, [ca])
    assert key != rootfs.cache_key("trixie", "amd64", m, [ca])
    assert key != rootfs.cache_key("bookworm", "amd64", m._replace(archive="http://b/debian"), [ca])
    ca.write_text("two")
    assert key != rootfs.cache_key("bookworm", "amd64", m, [ca])


HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 27 0:39 / /mnt/other rw,relatime - cgroup cgroup rw,memory
"""
PURE_V2 = (
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
)


def test_cgroup_hierarchies_of_a_hybrid_machine_as_boot_sh_mounts_them() -> None:
    hs = cgroups.hierarchies(HYBRID)
    assert [h.mount for h in hs] == [
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/cpuset",
        "/sys/fs/cgroup/systemd",
        "/sys/fs/cgroup/unified",
    ]
    assert cgroups.spec(hs).splitlines() == [
        "cgroup cpu,cpuacct cpu,cpuacct",
        "cgroup cpuset cpuset",
        "cgroup systemd name=systemd",
        "cgroup2 unified -",
    ]
    assert cgroups.dirs(hs, "devkit-abc123-x")[1] == Path("/sys/fs/cgroup/cpuset/devkit-abc123-x")


def test_a_pure_cgroup_v2_machine_mounts_one_hierarchy_at_the_top() -> None:
    hs = cgroups.hierarchies(PURE_V2)
    assert cgroups.spec(hs) == "cgroup2 . -"
    assert cgroups.dirs(hs, "devkit-abc123-x") == [Path("/sys/fs/cgroup/devkit-abc123-x")]


def test_the_proxy_allows_the_mirrors_pypi_and_the_machines_pip_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://pypi.corp.example/simple\nextra-index-url = file:///opt/wheels\n"
    )
    indexes = proxy.pip_indexes((str(conf), str(tmp_path / "absent.conf")))
    assert indexes == ["https://pypi.corp.example/simple"]
    hosts = proxy.allowed_hosts(["deb.debian.org"], indexes)
    assert hosts == ["deb.debian.org", "files.pythonhosted.org", "pypi.corp.example", "pypi.org"]
    patterns = proxy.filter_text(hosts).splitlines()
    assert patterns[0] == r"^deb\.debian\.org$"
    assert not any(re.search(p, "deb.debian.org.evil.example") for p in patterns)
    assert not any(re.search(p, "debXdebian.org") for p in patterns)
