"""ProxyJump: every hop's host key is verified (Fabric would auto-accept the gateway's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ssh.conftest import Bed, devkit

pytestmark = [pytest.mark.ssh, pytest.mark.root]


def test_proxyjump_hops_verify_their_host_keys(bed: Bed, hosts3: list[str], tmp_path: Path) -> None:
    boxes = bed.dir / "state" / "sandbox"
    h1 = json.loads((boxes / "h1" / "sandbox.json").read_text())
    h2 = json.loads((boxes / "h2" / "sandbox.json").read_text())
    stranger = tmp_path / "known_hosts_without_h1"
    stranger.write_text("")
    cfg = Path(bed.env["DEVKIT_SSH_CONFIG"])
    original = cfg.read_text() if cfg.exists() else ""
    cfg.write_text(
        original
        + f"""
Host via-h1
  HostName {h2["address"]}
  User root
  IdentityFile {boxes}/h2/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {boxes}/h2/known_hosts
  ProxyJump h1
Host h1-unverified
  HostName {h1["address"]}
  User root
  IdentityFile {boxes}/h1/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {stranger}
Host via-unverified
  HostName {h2["address"]}
  User root
  IdentityFile {boxes}/h2/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {boxes}/h2/known_hosts
  ProxyJump h1-unverified
"""
    )
    dry = [
        "--stack",
        "halfstack",
        "--base-dir",
        str(tmp_path / "b-{host}"),
        "--dry-run",
        "--format",
        "json",
    ]
    try:
        through = devkit(bed, "provision", "via-h1", *dry)
        assert through.returncode == 0, through.stdout + through.stderr
        assert json.loads(through.stdout)["hosts"][0]["status"] == "planned"

        refused = devkit(bed, "provision", "via-unverified", *dry)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        error = json.loads(refused.stdout)["hosts"][0]["error"]
        assert f"unknown host key for {h1['address']}" in error["message"], error
        assert stranger.read_text() == ""  # nothing recorded without the opt-in
    finally:
        cfg.write_text(original)


def test_a_two_hop_proxyjump_dials_the_hops_in_order(
    bed: Bed, hosts3: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ProxyJump h1,h2` reaches h3 through h1 first, then h2: h3 sees the session come from h2."""
    from devkit.provision.ssh import client as ssh
    from devkit.provision.ssh.command import sh

    boxes = bed.dir / "state" / "sandbox"
    addr = {h: json.loads((boxes / h / "sandbox.json").read_text())["address"] for h in hosts3}
    cfg = bed.dir / "ssh_config_chain"
    cfg.write_text(
        f"Include {bed.env['DEVKIT_SSH_CONFIG']}\n"
        f"Host chain\n  HostName {addr['h3']}\n  User root\n  IdentityFile {boxes}/h3/client_key\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {boxes}/h3/known_hosts\n  ProxyJump h1,h2\n"
    )
    for k, v in bed.env.items():
        if k.startswith("DEVKIT_"):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("DEVKIT_SSH_CONFIG", str(cfg))
    opts = ssh.resolve("chain")
    assert opts.proxy_jump == ("h1", "h2")
    conn = ssh.connect("chain", "chain", ssh.REFUSE, 10, 30)
    try:
        assert conn.cx.gateway.host == addr["h2"] and conn.cx.gateway.gateway.host == addr["h1"]
        client = conn.run(sh("echo $SSH_CLIENT"), "probe").stdout.split()[0]
        assert client == addr["h2"], client  # the last hop dialled h3
    finally:
        conn.close()
