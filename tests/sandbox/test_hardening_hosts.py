"""Issue 22 (Hardening III) on an isolated sandbox, whose /tmp and dpkg are its own: another user
of the host plants the lock folder with links for root's provision to write through; a Ctrl-C
during apt left dpkg interrupted. Each test failed before its fix."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.ssh.conftest import Bed, devkit, failed, ssh

pytestmark = [pytest.mark.root]

IDLE = '[stack]\nname = "{name}"\n{more}[services.idle.program]\ncommand = "/bin/sleep 100000"\n'


def _up(b: Bed, name: str) -> None:
    r = devkit(b, "sandbox", "up", name, "--release", "trixie", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr


def _stack(b: Bed, name: str, more: str = "") -> str:
    d = b.dir / name
    d.mkdir()
    (d / "stack.toml").write_text(IDLE.format(name=name, more=more))
    return str(d)


def _inside(b: Bed, host: str, script: str) -> subprocess.CompletedProcess[str]:
    r = ssh(b.env, host, script)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


# --- 5: the host lock folder in /tmp is used only when it is the user's own -------------------


def test_a_planted_lock_folder_is_refused_and_nothing_is_written_through_its_links(
    make_bed: Callable[..., Bed],
) -> None:
    b = make_bed()
    _up(b, "lk")
    stack = _stack(b, "idle")
    # another user of the host, before root's next provision: /tmp/devkit-locks-0, open to all,
    # with links named like the lock file and its holder file of root's base dir
    _inside(
        b,
        "lk",
        "useradd -M mallory && echo precious >/root/victim && "
        "f=$(realpath -m -- /var/lib/devkit/lk/idle | tr -d '\\n' | sha256sum | cut -c1-16).lock && "
        "runuser -u mallory -- sh -c 'mkdir -m 777 /tmp/devkit-locks-0 && "
        "ln -s /root/victim /tmp/devkit-locks-0/$0.holder && "
        'ln -s /etc/devkit-planted /tmp/devkit-locks-0/$0\' "$f"',
    )
    p = devkit(b, "provision", "lk", "--stack", stack, "--format", "json", timeout=600)
    assert p.returncode == 1, failed(p.stdout) + p.stderr
    assert "the lock folder /tmp/devkit-locks-0 (owner mallory, mode 777" in p.stdout, p.stdout
    r = _inside(
        b,
        "lk",
        "cat /root/victim; for p in /etc/devkit-planted /var/lib/devkit/lk; do "
        '[ -e "$p" ] && echo "$p exists"; done; true',
    )
    # not written through the holder's link, nothing made through the lock's, the run changed nothing
    assert r.stdout == "precious\n", r.stdout


# --- 12: a dpkg run cut short is finished before apt runs, and the run says so -----------------


def test_an_interrupted_dpkg_is_recovered_and_told(make_bed: Callable[..., Bed]) -> None:
    b = make_bed()
    _up(b, "pk")
    stack = _stack(b, "pk", 'packages = ["less"]\n')
    # what a Ctrl-C during `apt-get install` leaves: dpkg's journal not empty (apt then refuses
    # every run: "dpkg was interrupted, you must manually run 'dpkg --configure -a'")
    _inside(b, "pk", ": >/var/lib/dpkg/updates/0000")
    p = devkit(b, "provision", "pk", "--stack", stack, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "pk: dpkg recover: changed" in p.stdout and "pk: packages install: changed" in p.stdout
    assert "dpkg was interrupted" in p.stdout and "dpkg --configure -a" in p.stdout
    r = _inside(b, "pk", "ls /var/lib/dpkg/updates; dpkg-query -W -f '${db:Status-Status}' less")
    assert r.stdout.strip() == "installed"
    again = devkit(b, "provision", "pk", "--stack", stack, timeout=300)
    assert again.returncode == 0 and "pk  unchanged" in again.stdout, again.stdout + again.stderr
