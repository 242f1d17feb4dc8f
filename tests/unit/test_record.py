"""devkit.record.Record behaves like typing.NamedTuple for everything devkit uses."""

from __future__ import annotations

import pickle

import pytest

from devkit.record import Record


class Point(Record):
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> Point:
        return self._replace(x=self.x + dx)


def test_fields_defaults_and_methods() -> None:
    p = Point(1)
    assert p == (1, 0, "") and p.x == 1 and p.y == 0
    assert Point._fields == ("x", "y", "label")
    assert p.moved(2) == Point(3) and Point(-2, 3).norm1 == 5
    assert p._asdict() == {"x": 1, "y": 0, "label": ""}
    assert Point.__doc__ == "A point." and Point.__name__ == "Point"
    assert Point.__module__ == __name__
    assert isinstance(p, tuple) and hash(p) == hash((1, 0, ""))
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(TypeError):
        Point()
    with pytest.raises(AttributeError):
        p.x = 3  # type: ignore[misc]
