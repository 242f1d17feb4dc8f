"""The plan: pure. Facts + desired state -> ordered ops, kind by kind, each with its predicted change.

An op that would change nothing is not in the plan, so a converged host plans nothing.
"""

from __future__ import annotations

from devkit.provision.kinds import registry
from devkit.provision.kinds.base import Desired, Facts, Op, PlanState


def plan(d: Desired, f: Facts) -> list[Op]:
    state = PlanState(set(), tuple(k.steps for k in registry.STEPS))
    return [op for kind in registry.KINDS for op in kind.plan(d, f, state)]
