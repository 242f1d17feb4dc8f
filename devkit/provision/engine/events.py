"""What the engine reports while it runs and when it is done: typed events and results (no strings
for the reporter to parse back)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from devkit.errors import RemoteError
from devkit.provision.ssh.command import MASK


class Event(NamedTuple):
    host: str
    what: str  # connecting, lock, facts, op, changed, failed, health
    op_id: str = ""
    action: str = ""
    text: str = ""  # for `failed`: the error, one line

    def line(self) -> str:
        """The progress line for people: what the host is doing now."""
        if self.what in ("op", "changed"):
            done = ": changed" if self.what == "changed" else ""
            return f"{self.op_id} {self.action}{done}"
        return {
            "connecting": "connecting",
            "facts": "gathering facts",
            "health": "checking health",
        }.get(self.what, f"failed: {self.text}")


Emit = Callable[[Event], None]


class OpResult(NamedTuple):
    id: str
    action: str
    detail: str
    status: str  # changed, failed, planned
    diff: str = ""


class ServiceStatus(NamedTuple):
    service: str
    state: str  # supervisord's, or STOPPED / NOT RUNNING
    pid: int | None
    uptime: int
    healthy: bool | None  # None: no check
    health_output: str = ""
    log_tail: str = ""
    # the edit loop's restarts of it: the last edit-to-serving seconds, p50, p95, count, how
    edit: dict[str, Any] | None = None

    @property
    def up(self) -> bool:
        return self.state in ("RUNNING", "STARTING") and self.healthy is not False


class HostResult(NamedTuple):
    host: str
    status: str  # changed, unchanged, failed, planned, interrupted
    ops: list[OpResult]
    error: RemoteError | None
    seconds: float
    services: list[ServiceStatus] | None = None  # the status rows after a run that changed things
    notes: str = ""  # the stack's words for the user (login URL...), rendered for this host


class Redact(NamedTuple):
    """Every secret value of a host, replaced wherever it might show (details, diffs, stderr)."""

    values: tuple[str, ...]

    @classmethod
    def of(cls, secrets: Mapping[str, str]) -> Redact:
        return cls(tuple(sorted((v for v in secrets.values() if v), key=len, reverse=True)))

    def text(self, text: str) -> str:
        for v in self.values:
            text = text.replace(v, MASK)
        return text

    def op(self, r: OpResult) -> OpResult:
        return r._replace(detail=self.text(r.detail), diff=self.text(r.diff))

    def error(self, e: RemoteError) -> RemoteError:
        out = type(e)(
            e.host,
            e.op,
            self.text(e.detail),
            self.text(e.cmd),
            e.rc,
            self.text(e.stderr_tail),
            e.hint,
        )
        return out
