"""The source stage of a run: what a stack's code is, settled once per host before its desired
state is built, and brought to the host first where only the host can read it.

A source on this machine (a repository, a bundle, `local`) says here what it brings (its VERSION,
interpreter and pins: stack/source.py), so the desired state is built from it before anything
changes, and the checkout is made as the run's first op. A URL says so only once the host has
cloned it: that clone (or switch) is made first, the host looked at again, and only then is the
desired state built. Either way it is built once, from the code the run will run.
"""

from __future__ import annotations

from typing import Any

from devkit.provision.engine import desired, hosts
from devkit.provision.kinds import checkout
from devkit.provision.kinds.base import ApplyContext, Desired, Facts, PlanState
from devkit.provision.ssh.connection import Connection
from devkit.provision.stack import spec as stk
from devkit.provision.stack.layout import Layout
from devkit.provision.stack.source import Code


def bring(
    conn: Connection,
    stack: stk.Stack,
    target: hosts.Target,
    overrides: dict[str, Any],
    f: Facts,
    code: Code,
    on_op: Any,
) -> None:
    """Clone (or switch to) a source only the host can read, before the desired state is built:
    the checkout kind's own op, alone."""
    spec = checkout.spec_of(stack)
    assert spec is not None and code.source is not None
    path, _ = desired.early(stack, target, overrides, f, spec.path, "path")
    if not path.startswith("/"):
        raise checkout.not_absolute(stack, path)
    host = f.host
    want = checkout.DCheckout(path, code.source)
    d = Desired(Layout(host.base), host.user, host.uid == 0, stack.name, {checkout.NAME: want}, {})
    ops = checkout.plan(d, f, PlanState(set()))
    ctx = ApplyContext(d, f)
    checkout.check(conn, ops, ctx)
    for op in ops:
        on_op(op, False)
        checkout.apply(conn, op, ctx)
        on_op(op, True)
