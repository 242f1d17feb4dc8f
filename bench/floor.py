"""The floor for a range check: ONE `git log` call plus one regex per message (not a full validator).

    python bench/floor.py base..HEAD

Prints the SHA of every message that fails the regex (a Conventional Commits header whose type is in the
usual list, case-insensitive, then nothing or a blank line before the rest) and exits 1 if there is one.
"""

from __future__ import annotations

import re
import subprocess
import sys

TYPES = "build|chore|ci|docs|feat|fix|perf|refactor|revert|style|test"
HEADER = re.compile(rf"(?:{TYPES})(?:\([^()\r\n]+\))?!?: [^\r\n]+(?:\n|\n\n.*)?", re.S | re.I)


def main(argv: list[str]) -> int:
    rev_range = argv[1] if len(argv) > 1 else "HEAD"
    out = subprocess.run(
        ["git", "log", "-z", "--format=%H%x00%B", rev_range, "--"], capture_output=True, check=True
    ).stdout.decode("utf-8", "replace")
    fields = out.split("\0")
    bad = [fields[i] for i in range(0, len(fields) - 1, 2) if not HEADER.fullmatch(fields[i + 1])]
    if bad:
        sys.stdout.write("\n".join(bad) + "\n")
    print(f"floor: {len(bad)} of {len(fields) // 2} messages fail", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
