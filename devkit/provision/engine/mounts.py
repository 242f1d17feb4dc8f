"""Mounts left under a base dir (dockerd's overlay, bind and nsfs mounts after an unclean stop).

`teardown` unmounts them, deepest first, before `--purge` deletes the directory: `rm -rf` across a
live mount would delete the data behind it, or fail half-way with "Device or resource busy".
"""

from __future__ import annotations

from devkit.provision.ssh.command import Command, q, sh

# runs on the host (stdlib only); prints each mount point it unmounted
_SCRIPT = r"""
import os, re, subprocess, sys
base = os.path.realpath(os.path.expanduser(sys.argv[1]))
found = []
with open("/proc/self/mountinfo") as f:
    for line in f:
        mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if mp.startswith(base + "/"):
            found.append(mp)
for mp in sorted(set(found), key=len, reverse=True):
    for cmd in (["umount", "--", mp], ["umount", "-l", "--", mp]):
        if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0:
            print(mp)
            break
    else:
        sys.exit("cannot unmount " + mp)
"""


def unmount_under(base: str, is_root: bool = True) -> Command:
    """A command that unmounts everything mounted below `base` (not `base` itself)."""
    cmd = sh("/usr/bin/python3 -I -c", q(_SCRIPT), q(base))
    if is_root:
        return cmd
    # a plain user has nothing of devkit's mounted unless it could sudo (dockerd runs as root)
    return sh('if [ "$(id -u)" = 0 ]; then', cmd, "; else sudo -n", cmd, "2>/dev/null || true; fi")
