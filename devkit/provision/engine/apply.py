"""Apply: run the plan's ops on one host, in order, each by the kind that planned it."""

from __future__ import annotations

from collections.abc import Callable

from devkit.provision.kinds import registry
from devkit.provision.kinds.base import ApplyContext, Op
from devkit.provision.ssh.connection import Connection


def apply(
    conn: Connection, ctx: ApplyContext, ops: list[Op], on_op: Callable[[Op, bool], None]
) -> None:
    """Run ops in order (on_op before and after each); raises RemoteError at the first failure
    (earlier ops stay applied, and each kind's finish still records what was done)."""
    for kind in registry.KINDS:
        kind.check(conn, ops, ctx)
    try:
        for op in ops:
            on_op(op, False)
            registry.kind(op.kind).apply(conn, op, ctx)
            on_op(op, True)
    finally:
        for kind in registry.KINDS:
            kind.finish(conn, ctx)
