"""The resource kinds, in the order their desired state is built and their ops are planned.

Adding a kind is adding its module (base.Kind says what it provides) and a line in KINDS; a kind
with a group of its own in stack.toml hands it over as its GROUP, and `load_stack` gives it to the
stack parser. The engine reads this registry when it runs (never a copy made at import).
"""

from __future__ import annotations

from devkit.provision.kinds import (
    boot,
    checkout,
    cluster,
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
from devkit.provision.kinds.base import Kind
from devkit.provision.stack import spec
from devkit.provision.stack.spec import Group, Stack

KINDS: tuple[Kind, ...] = (
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
    cluster,  # the manager host's offer of its shared folder; an agent host's mount is a step
    programs,
    vscode,  # in the checkout, which exists once the services run from it
    boot,
    images,
)
# kinds whose ops run inside a service's bring-up (before or after it starts), in this order
STEPS: tuple[Kind, ...] = (inits, images, cluster)


def kind(name: str) -> Kind:
    return next(k for k in KINDS if name == k.NAME)


def groups() -> tuple[Group, ...]:
    """The stack.toml groups the kinds own."""
    return tuple(k.GROUP for k in KINDS if k.GROUP is not None)


def load_stack(name: str) -> Stack:
    """Stack `name` (a built-in name or a folder with stack.toml), every kind's group included."""
    return spec.load(name, groups())
