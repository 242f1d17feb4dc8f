"""The records every check produces and every output format renders."""

from __future__ import annotations

from devkit.record import Record

ERROR = "error"
WARNING = "warning"


class Location(Record):
    file: str = ""  # repository-relative path, or "" for a commit message from a range / text
    line: int = 0  # 1-based; 0 = the whole file or message
    col: int = 0  # 1-based; 0 = the whole line
    commit: str = ""  # full sha in range mode


class Violation(Record):
    code: str  # "CM003"
    name: str  # "type-enum"
    message: str
    location: Location = Location()
    hint: str = ""
    severity: str = ERROR
    context: str = ""  # what was checked: a commit subject, a branch name; shown in text output


class Report(Record):
    """The result of one check: what it looked at, what it found, and notes for the reader."""

    check: str  # "commit", "branch", "news", "lint", ...
    violations: tuple[Violation, ...] = ()
    checked: int = 0  # number of messages / names / files looked at
    notes: tuple[str, ...] = ()
    error: str = ""  # the check could not run (ci keeps going with the others)

    @property
    def errors(self) -> int:
        return sum(1 for v in self.violations if v.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for v in self.violations if v.severity == WARNING)

    @property
    def ok(self) -> bool:
        return not self.error and self.errors == 0


def sort_key(v: Violation) -> tuple[str, str, int, int, str]:
    loc = v.location
    return (loc.commit, loc.file, loc.line, loc.col, v.code)
