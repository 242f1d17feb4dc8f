"""PID 1 of an isolated devkit sandbox (boot.sh copies this file in and runs it under the sandbox's own
python3; standard library only, never imported by devkit).

It starts the sandbox's sshd and starts it again when it exits, and reaps every orphan: the daemons
that provisioning starts double-fork and end up as its children. Like any namespace init it gets no
signal it does not handle, so only SIGKILL ends it: `devkit sandbox down` does that, and the kernel
then kills every process of the sandbox, containers of its dockerd included.
"""

from __future__ import annotations

import errno
import os
import sys
import time

SSHD = ["/usr/sbin/sshd", "-D", "-e"]
LOG = "/run/devkit/sshd.log"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def delegate_cgroup2() -> None:
    """On a pure cgroup v2 machine: move into a leaf, so the sandbox's root cgroup can hand its
    controllers down to dockerd's cgroups (v2 lets only cgroups without processes do that)."""
    root = "/sys/fs/cgroup"
    if not os.path.exists(f"{root}/cgroup.controllers"):
        return
    os.makedirs(f"{root}/init", exist_ok=True)
    with open(f"{root}/init/cgroup.procs", "w") as f:
        f.write("0")  # "0": the writing process itself
    with open(f"{root}/cgroup.controllers") as f:
        wanted = " ".join(f"+{c}" for c in f.read().split())
    for _ in range(50):  # until devkit has moved `unshare`, outside the sandbox, into a leaf too
        try:
            if wanted:
                with open(f"{root}/cgroup.subtree_control", "w") as f:
                    f.write(wanted)
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.1)


def start_sshd() -> int:
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(SSHD[0], SSHD, ENV, file_actions=actions, setsid=True)


def main() -> None:
    try:
        delegate_cgroup2()
    except OSError as exc:
        print(f"devkit init: cgroup v2 delegation failed: {exc}", file=sys.stderr)
    sshd, starts = start_sshd(), [time.monotonic()]
    while True:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            time.sleep(1)
            continue
        if pid != sshd:
            continue
        # sshd went (killed, or a broken config): start it again, unless it keeps dying at once
        now = time.monotonic()
        starts = [t for t in starts if now - t < 30]
        if len(starts) >= 5:
            with open(LOG, "a") as f:
                f.write("devkit init: sshd exited 5 times within 30 s; not starting it again\n")
            sshd = -1
            continue
        time.sleep(0.2)
        sshd = start_sshd()
        starts.append(time.monotonic())


if __name__ == "__main__":
    main()
