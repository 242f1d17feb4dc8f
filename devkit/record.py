"""`Record`: typing.NamedTuple's class syntax without importing `typing` at run time.

The hook paths run on every commit and `import typing` is about a seventh of a whole hook run
(bench/RESULTS.md). Type checkers take the TYPE_CHECKING branch (mypy and pyright treat the name
specially wherever it comes from), so records stay fully typed; at run time a class body becomes a
`collections.namedtuple` the way typing's NamedTupleMeta builds one.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    _SKIP = frozenset({"__annotations__", "__module__", "__qualname__", "__dict__", "__weakref__"})

    class _RecordMeta(type):
        def __new__(mcls, name, bases, ns):
            if ns.get("_root"):
                return super().__new__(mcls, name, bases, ns)
            fields = list(ns.get("__annotations__", {}))
            defaults = [ns[f] for f in fields if f in ns]
            cls = namedtuple(name, fields, defaults=defaults, module=ns.get("__module__"))
            for key, value in ns.items():
                if key not in _SKIP and key not in fields:
                    setattr(cls, key, value)
            cls.__annotations__ = dict(ns.get("__annotations__", {}))
            cls.__qualname__ = ns.get("__qualname__", name)
            return cls

    _RecordBase = _RecordMeta("Record", (), {"_root": True})

    def Record(typename, fields=()):
        return namedtuple(typename, [f for f, _ in fields])

    Record.__mro_entries__ = lambda bases: (_RecordBase,)
