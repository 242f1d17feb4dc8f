"""The desired state of one host: the stack rendered with its variables and the host's facts, built
kind by kind (in registry order).

Everything that can fail on bad input (undefined variables, bad templates, unsafe values) fails here,
before any op runs on any host, so a bad template never leaves a half-provisioned host.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import secrets as random
from collections.abc import Callable
from typing import Any

from devkit.errors import DevkitError
from devkit.provision.engine import hosts
from devkit.provision.kinds import checkout, files, registry
from devkit.provision.kinds import cluster as cluster_kind
from devkit.provision.kinds import secrets as secret_kind
from devkit.provision.kinds.base import Build, Desired, Facts, Render, truthy
from devkit.provision.stack import render, vartypes
from devkit.provision.stack import spec as stk
from devkit.provision.stack.layout import Layout
from devkit.provision.stack.source import WHEELS, Code


def variables(
    stack: stk.Stack, target: hosts.Target, overrides: dict[str, Any], platform: str = ""
) -> dict[str, Any]:
    """The stack's variables, then its values for the host's platform, every host's, the host's own,
    and --set's."""
    v = stack.vars
    if platform in stack.platform:
        v = hosts.merge(v, stack.platform[platform]["vars"], f"{stack.source}: platform.{platform}")
    v = hosts.merge(v, target.common_vars, "[tool.devkit.provision.vars]")
    v = hosts.merge(v, target.vars, f"[tool.devkit.hosts.{target.name}.vars]")
    return hosts.merge(v, overrides, "--set")


LATER = ("checkout_python", "checkout_version")  # the engine variables the source settles


def engine_vars(
    stack: stk.Stack,
    target: hosts.Target,
    facts: Facts,
    secret_values: dict[str, str],
    manager_address: str | None,
    code: Code,
) -> dict[str, Any]:
    """The variables the engine gives every template (before the cluster is known, without
    `cluster`)."""
    host = facts.host
    lay = Layout(host.base)
    return {
        "base": lay.base,
        "user": host.user,
        "home": host.home,
        "is_root": host.uid == 0,
        "host": target.name,
        "stack": stack.name,
        "python": stack.python,
        "path": lay.path,
        "secret_path": lay.secret,
        "secrets": secret_values,
        "host_docker": host.docker,
        "os": dict(host.os),
        # the newest PostgreSQL the host has, else the one its package manager would install
        "host_postgres": host.postgres[-1] if host.postgres else host.postgres_candidate,
        "host_pythons": list(host.pythons),
        # what the source asks for and says it is ("3.11.8", its VERSION; "" from the wheels): a
        # stack's settings can follow the branch, as Backend.AI's release line does
        "checkout_python": code.python,
        "checkout_version": code.version,
        **(
            {"cluster": cluster(target, host.address, manager_address)}
            if manager_address is not None
            else {}
        ),
    }


def early(
    stack: stk.Stack, target: hosts.Target, overrides: dict[str, Any], f: Facts, text: str, key: str
) -> tuple[str, str]:
    """A [checkout] template rendered from the settings alone, and the name to give in an error:
    the setting it just uses (`backend_ai.source`), else the group's key."""
    one = re.fullmatch(r"\{\{\s*([\w.]+)\s*\}\}", text.strip())
    where = one.group(1) if one and key == "source" else f"{stack.source}: checkout.{key}"
    env = render.environment(stack.dir, *stack.search)
    variables_ = variables(stack, target, overrides, stk.platform_of(f.host.os))
    engine = engine_vars(stack, target, f, {}, None, WHEELS)
    return render.render_early(env, text, variables_, engine, (*LATER, "cluster"), where), where


def settle_code(
    stack: stk.Stack, target: hosts.Target, overrides: dict[str, Any], f: Facts
) -> Code:
    """The source stage's first step (engine/source.py): the stack's [checkout] source, rendered
    from the settings before any other template, parsed once, with what it brings."""
    spec = checkout.spec_of(stack)
    if spec is None:
        return WHEELS
    text, where = early(stack, target, overrides, f, spec.source, "source")
    return checkout.code(text, f.of(checkout.NAME), where)


def build(
    stack: stk.Stack,
    target: hosts.Target,
    overrides: dict[str, Any],
    facts: Facts,
    new_secret: Callable[[int], str] = random.token_hex,
    manager_address: str = "",
    code: Code | None = None,
    share: Any = None,
) -> Desired:
    """The host's desired state, built from the code the source stage settled on (engine/source.py;
    settled here when not given); in a cluster, with what the other hosts share with it
    (kinds/cluster.py: `share`)."""
    if code is None:
        code = settle_code(stack, target, overrides, facts)
    # each file template's format (the notes are printed here, as they are)
    formats = {f.template: f.format for f in files.all_files(stack)}
    env = render.environment(
        stack.dir,
        *stack.search,
        formats={**formats, **({stack.notes: "text"} if stack.notes else {})},
    )
    host = facts.host
    lay = Layout(host.base)
    secret_values = secret_kind.values(stack, facts.of(secret_kind.NAME), new_secret).values
    engine = engine_vars(stack, target, facts, secret_values, manager_address, code)
    platform = stk.platform_of(host.os)
    resolved = render.resolve_vars(env, variables(stack, target, overrides, platform), engine)
    typed = vartypes.check(resolved, stack.types, stack.source)
    ctx = {**typed.values, **engine}

    def text(source: str, where: str) -> str:
        return render.render_string(env, source, ctx, f"{stack.source}: {where}")

    enabled = tuple(s for s in stack.services if _enabled(text(s.when, f"services.{s.name}.when")))
    r = Render(
        text,
        lambda name: render.render_file(env, name, ctx),
        host.user,
        functools.partial(render.blame, ctx),
    )
    b = Build(stack._replace(services=enabled), r, facts, lay, secret_values, {}, code, share)
    for kind in registry.KINDS:
        b.built[kind.NAME] = kind.desired(b)
    b.built["files"] = tuple(b.built["files"])  # the kinds after files may add to it; now frozen
    # the manager host's view of its cluster (`devkit status`), rendered like everything else
    b.built["cluster_status"] = (
        text(cl.status, "cluster.status") if (cl := cluster_kind.spec_of(stack)) else ""
    )
    notes = r.file(stack.notes) if stack.notes else ""
    masked = {**secret_values, **{f"var:{k}": v for k, v in typed.secrets.items()}}
    if (share := b.built[cluster_kind.NAME]) is not None:
        masked["cluster:key"] = share.key
    own = stk.builtin(stack)
    return Desired(
        lay,
        host.user,
        host.uid == 0,
        stack.name,
        b.built,
        masked,
        notes,
        "" if own else str(stack.dir),
    )


def cluster(target: hosts.Target, address: str, manager_address: str) -> dict[str, Any]:
    """The `cluster` template variable: the host's role and the private addresses the hosts reach
    each other at (a host on its own: everything on 127.0.0.1)."""
    if not target.role:
        return {
            "role": "single",
            "address": "127.0.0.1",
            "manager_address": "127.0.0.1",
            "agent": True,
        }
    for name, value in (("its", address), ("the manager host's", manager_address)):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise DevkitError(
                f"{target.name}: cannot tell {name} address for the cluster (got {value!r})",
                "The hosts of a cluster must be reached over SSH at addresses they reach each "
                "other at (SSH_CONNECTION tells each host its own).",
            ) from None
    return {
        "role": target.role,
        "address": address,
        "manager_address": manager_address,
        "agent": target.role == "agent" or target.with_agent,
    }


def _enabled(value: str) -> bool:
    return value.strip() == "" or truthy(value)
