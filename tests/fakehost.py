"""FakeHost: an in-memory Connection for the engine's unit tests (no sshd, no root).

It records every command and file write, answers the facts script with the raw facts a test gives
it, and answers other commands by rules (`on(...)`): an exit code and output, or a timeout, a lost
connection, or a command that blocks until interrupt(). The same behaviour is tested against real
sshds in tests/ssh and tests/e2e.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TextIO

from devkit.provision.engine import facts
from devkit.provision.kinds import registry
from devkit.provision.ssh.command import Command, sh
from devkit.provision.ssh.connection import (
    CommandTimedOut,
    ConnectionLost,
    Interrupted,
    Result,
    failed,
)


class Rule(NamedTuple):
    pattern: re.Pattern[str]  # searched in the op id and in the command as the host runs it
    result: Result
    error: type[Exception] | None = None  # CommandTimedOut, ConnectionLost
    block: bool = False  # wait until interrupt()


class _Held:
    def __init__(self, host: FakeHost, said: str = "") -> None:
        self.host, self.said = host, said

    def release(self) -> None:
        self.host.held -= 1
        self.host.log.append(("lock", "release"))


class FakeHost:
    def __init__(self, name: str = "vm", raw_facts: dict[str, Any] | None = None) -> None:
        self.name = name
        self.raw_facts = raw_facts if raw_facts is not None else fresh_raw()
        self.files: dict[str, tuple[bytes, int, str]] = {}  # path -> (data, mode, owner)
        self.log: list[tuple[str, str]] = []  # (op, what ran or was written), in order
        self.shown: list[str] = []  # each command as people would see it
        self.rules: list[Rule] = []
        self.interrupted = threading.Event()
        self.blocked = threading.Event()  # set once a blocking command is waiting
        self.closed = False
        self.facts_calls = 0
        self.held = 0  # locks held now

    def on(
        self,
        pattern: str,
        rc: int = 0,
        stdout: str = "",
        stderr: str = "",
        error: type[Exception] | None = None,
        block: bool = False,
    ) -> FakeHost:
        self.rules.append(Rule(re.compile(pattern), Result(rc, stdout, stderr), error, block))
        return self

    # --- the Connection protocol -------------------------------------------------------------
    def run(
        self, cmd: Command, op: str, *, check: bool = True, timeout: float | None = None
    ) -> Result:
        text = str(cmd)
        if op == "facts":
            return Result(0, self.facts_answer(text), "")
        self.log.append((op, text))
        self.shown.append(cmd.shown())
        res = Result(0, "", "")
        for rule in self.rules:
            if rule.pattern.search(op) or rule.pattern.search(text):
                if rule.block:
                    self.blocked.set()
                    self.interrupted.wait(30)
                    raise Interrupted(self.name, op, "interrupted (Ctrl-C)", cmd.shown())
                if rule.error is CommandTimedOut:
                    raise CommandTimedOut(self.name, op, "timed out after 25 s", cmd.shown())
                if rule.error is ConnectionLost:
                    raise ConnectionLost(self.name, op, "connection lost: EOF", cmd.shown())
                res = rule.result
                break
        if check and res.rc != 0:
            raise failed(self.name, op, cmd, res)
        return res

    def facts_answer(self, text: str) -> str:
        self.facts_calls += 1
        look = self.status_look() if '"health": "provisioned"' in text else self.raw_facts
        return json.dumps(look)

    def status_look(self) -> dict[str, Any]:
        """The facts with the health checks run (the status table at the end of a run): a test's
        own answer when it gives one, else every program this host started in the run running
        and passing its check, as a real host's would."""
        raw = copy.deepcopy(self.raw_facts)
        progs = raw["kinds"].setdefault("programs", {})
        if progs.get("health"):
            return raw
        states = progs.setdefault("programs", {})
        started = {op.split(":", 1)[1] for op, _ in self.log if op.startswith("program:")}
        for name in started:
            states[name] = {"state": "RUNNING", "pid": 1, "uptime": 1}
        progs["running"] = bool(started) or progs.get("running", False)
        progs["health"] = {n: {"ok": True, "output": ""} for n in states}
        return raw

    def put(self, path: str, data: bytes, mode: int, op: str, owner: str = "") -> None:
        self.files[path] = (data, mode, owner)
        self.log.append((op, f"put {path}"))

    def get(self, path: str) -> bytes | None:
        item = self.files.get(path)
        return item[0] if item else None

    def stream(self, cmd: Command, out: TextIO, pty: bool = False) -> int:
        res = self.run(cmd, "stream", check=False)
        out.write(res.stdout)
        return res.rc

    def interrupt(self) -> None:
        self.interrupted.set()

    def hold(self, cmd: Command, op: str, ready: str, timeout: float) -> _Held:
        # with a first look: the rules see the lock's command with the facts script's label
        look = "<facts script>" in cmd.shown()
        res = self.run(sh(cmd.shown()) if look else cmd, op, check=False)
        if res.rc != 0:
            raise failed(self.name, op, cmd, res)
        self.held += 1
        # a run's first look, taken with its lock
        said = self.facts_answer(str(cmd)) if look else ""
        return _Held(self, said)

    def close(self) -> None:
        self.closed = True

    # --- what tests look at ------------------------------------------------------------------
    def ops(self) -> list[str]:
        """The op of each command and write, in order, without repeats in a row."""
        out: list[str] = []
        for op, _ in self.log:
            if not out or out[-1] != op:
                out.append(op)
        return out

    def everything(self) -> str:
        """All the text that went to the host: command lines and file contents."""
        return "\n".join([t for _, t in self.log] + [d.decode() for d, _, _ in self.files.values()])


def host_raw(
    user: str = "root", uid: int = 0, base: str = "/srv/dk", **more: Any
) -> dict[str, Any]:
    return {
        "user": user,
        "uid": uid,
        "home": "/root" if uid == 0 else f"/home/{user}",
        "base": base,
        "os": {"id": "debian", "version": "12", "codename": "bookworm"},
        "python": "3.11.2",
        "machine": "x86_64",
        "listening": [],
        "docker": "",
        "postgres": ["15"],  # Debian 12's
        "pythons": ["3.11"],
        **more,
    }


def fresh_raw(**host: Any) -> dict[str, Any]:
    """What the facts script prints on a host with nothing of the stack on it."""
    return {"host": host_raw(**host), "kinds": {k.NAME: {} for k in registry.KINDS}}


def connector(hosts: dict[str, FakeHost]) -> Callable[[Any], FakeHost]:
    """engine.run's `connect`: the FakeHost of each target's name."""
    return lambda target: hosts[target.name]


def parsed(raw: dict[str, Any]) -> facts.Facts:
    return facts.parse(json.dumps(raw))
