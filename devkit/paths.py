"""Local paths devkit manages; every one can be redirected by an environment variable (tests do)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """devkit's local state (sandbox hosts): $DEVKIT_STATE_DIR, else $XDG_STATE_HOME/devkit."""
    if os.environ.get("DEVKIT_STATE_DIR"):
        return Path(os.environ["DEVKIT_STATE_DIR"])
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "devkit"


def ssh_config_file() -> Path:
    """The user's ssh_config: $DEVKIT_SSH_CONFIG, else ~/.ssh/config."""
    return Path(os.environ.get("DEVKIT_SSH_CONFIG") or Path.home() / ".ssh" / "config")


def known_hosts_file() -> Path:
    """The known_hosts devkit reads and (with --accept-new-host-key) appends to by default."""
    return Path(os.environ.get("DEVKIT_KNOWN_HOSTS") or Path.home() / ".ssh" / "known_hosts")


def stacks_dirs() -> list[Path]:
    """Where built-in stacks live: the repository's templates/ (editable install) or the wheel's copy."""
    pkg = Path(__file__).resolve().parent
    return [
        d for d in (pkg.parent / "templates" / "stacks", pkg / "templates" / "stacks") if d.is_dir()
    ]


def rootfs_cache_dir() -> Path:
    """The machine-level cache of sandbox root filesystems (one per Debian release and architecture):
    $DEVKIT_ROOTFS_CACHE, else /var/cache/devkit/rootfs."""
    return Path(os.environ.get("DEVKIT_ROOTFS_CACHE") or "/var/cache/devkit/rootfs")


def image_cache_dir() -> Path:
    """Root filesystem tarballs for container images, shared by every run on this machine:
    $DEVKIT_IMAGE_CACHE, else /var/cache/devkit/images as root, else ~/.cache/devkit/images."""
    if os.environ.get("DEVKIT_IMAGE_CACHE"):
        return Path(os.environ["DEVKIT_IMAGE_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/devkit/images")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "devkit" / "images"
