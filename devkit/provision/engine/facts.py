"""Gathering facts: every kind's question in ONE remote script per host, answered as JSON and parsed
into each kind's typed facts."""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any

from devkit.errors import RemoteError
from devkit.provision.kinds import registry
from devkit.provision.kinds.base import Facts, HostInfo
from devkit.provision.onhost import facts as host_facts
from devkit.provision.ssh.command import PYTHON, Command, q, sh
from devkit.provision.ssh.connection import Connection, Result, tail

_LOADER = """
COLLECTORS = {}
for _name, _source in SOURCES.items():
    _ns = dict(globals())
    exec(_source, _ns)
    COLLECTORS[_name] = _ns["collect"]
main(COLLECTORS)
"""


@functools.cache
def script() -> str:
    """onhost/facts.py, then each kind's collector source in a namespace of its own, then main()."""
    sources = {
        k.NAME: "from __future__ import annotations\n"
        + "\n\n".join(inspect.getsource(fn) for fn in k.REMOTE)
        for k in registry.KINDS
    }
    return (
        Path(host_facts.__file__).read_text(encoding="utf-8")
        + f"\nSOURCES = {sources!r}\n"
        + _LOADER
    )


def request(stack: Any, base: str, **extra: dict[str, Any]) -> dict[str, Any]:
    """What to ask: each kind's request, with `extra` merged into a kind's (health=... for status)."""
    kinds = {k.NAME: k.request(stack) for k in registry.KINDS}
    for name, more in extra.items():
        kinds[name] = {**kinds[name], **more}
    return {"base": base, "kinds": kinds}


def command(req: dict[str, Any]) -> Command:
    return sh(PYTHON, q(script()), q(json.dumps(req))).labelled("<facts script>")


def parse(output: str) -> Facts:
    """Parse the script's JSON; raises ValueError (or KeyError, TypeError) on garbage."""
    data = json.loads(output)
    kinds = data["kinds"]
    return Facts(
        HostInfo.parse(data["host"]),
        {k.NAME: k.parse(kinds.get(k.NAME) or {}) for k in registry.KINDS},
    )


def gather_kind(conn: Connection, kind: str, req: Any, base: str) -> Any:
    """One kind's collector on the host, with a request of its own (a second look, once the
    stack is rendered); returns its raw answer."""
    out = conn.run(command({"base": base, "kinds": {kind: req}}), "facts", check=False)
    try:
        return json.loads(out.stdout)["kinds"][kind]
    except (ValueError, KeyError, TypeError) as exc:
        raise _unreadable(conn, out, exc) from None


def fresh(host: HostInfo) -> Facts:
    """The facts of a host with nothing of the stack on it (what a kind parses from no answer)."""
    return Facts(host, {k.NAME: k.parse({}) for k in registry.KINDS})


def gather(conn: Connection, stack: Any, base: str, **extra: dict[str, Any]) -> Facts:
    out = conn.run(command(request(stack, base, **extra)), "facts", check=False)
    return answered(conn, out)


def answered(conn: Connection, out: Result) -> Facts:
    """The facts in the script's answer (from a command of its own, or said with the run's lock)."""
    try:
        if out.rc != 0:
            raise ValueError(f"the facts script exited with {out.rc}")
        return parse(out.stdout)
    except (ValueError, KeyError, TypeError) as exc:
        raise _unreadable(conn, out, exc, "Does the host have python3?") from None


def _unreadable(conn: Connection, out: Result, exc: Exception, hint: str = "") -> RemoteError:
    """The facts script's answer could not be read: what it said, with its stderr's tail."""
    return RemoteError(
        conn.name, "facts", f"unreadable facts: {exc}", "<facts script>", out.rc, tail(out.stderr),
        hint=hint,
    )  # fmt: skip
