"""The stacks on isolated hosts of both releases, in one parallel run: what each OS has (PostgreSQL 15
or 17, its packages, its Python) is found on the host, not assumed; a re-run changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.sandbox.conftest import RELEASES
from tests.ssh.conftest import Bed, devkit, ssh

pytestmark = [pytest.mark.root, pytest.mark.ssh]
POSTGRES = {"bookworm": "15", "trixie": "17"}


def test_the_halfstack_on_bookworm_and_trixie_in_parallel(bed: Bed) -> None:
    hosts = sorted(RELEASES)
    r = devkit(bed, "provision", *hosts, "--stack", "halfstack", "--format", "json", timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {h["host"]: h["status"] for h in json.loads(r.stdout)["hosts"]} == dict.fromkeys(
        hosts, "changed"
    )
    for name in hosts:
        st = json.loads(devkit(bed, "status", name, "--format", "json").stdout)
        assert st["ok"] and st["stack"] == "halfstack", st
        # the distribution's own PostgreSQL of that release, installed inside the sandbox
        version = POSTGRES[RELEASES[name]]
        out = ssh(bed.env, name, f"/usr/lib/postgresql/{version}/bin/postgres --version").stdout
        assert f"(PostgreSQL) {version}." in out, out
    again = devkit(bed, "provision", *hosts, "--stack", "halfstack", "--format", "json")
    assert [h["status"] for h in json.loads(again.stdout)["hosts"]] == ["unchanged"] * 2
    for name in hosts:
        r = devkit(bed, "teardown", name, "--purge", "--stack", "halfstack")
        assert r.returncode == 0, r.stdout + r.stderr
