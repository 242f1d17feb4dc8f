"""The resource kinds, in the order their desired state is built and their ops are planned.

Adding a kind is adding its module (see base.py for what it provides) and a line here.
"""

from __future__ import annotations

from types import ModuleType

from devkit.provision.kinds import (
    boot,
    checkout,
    devvenv,
    dirs,
    edit,
    files,
    images,
    inits,
    lfs,
    packages,
    programs,
    secrets,
    venvs,
    vscode,
)

KINDS: tuple[ModuleType, ...] = (
    packages,
    dirs,
    checkout,
    secrets,
    venvs,
    devvenv,
    lfs,
    files,
    inits,
    edit,  # the edit loop's files, before programs: its watcher restarts when they change
    programs,
    vscode,  # in the checkout, which exists once the services run from it
    boot,
    images,
)
BY_NAME: dict[str, ModuleType] = {k.NAME: k for k in KINDS}
# kinds whose ops run inside a service's bring-up (before or after it starts), in this order
STEPS: tuple[ModuleType, ...] = (inits, images)
