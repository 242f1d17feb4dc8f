"""The one did-you-mean of devkit: near-miss names for hints (`feet` -> `feat`).

Pure and light on purpose: the hook paths suggest types, scopes and config keys, and `difflib`
would cost them an import on the error path. Used by the rules, the config schema and the CLI.
"""

from __future__ import annotations


def distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transpositions (`fxi` -> `fix` is one edit)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            cur.append(cost)
        prev2, prev = prev, cur
    return prev[-1]


# the longest word compared: the edit distance is quadratic, and a 3 MB "type" is no near miss
MAX_WORD = 64


def did_you_mean(
    word: str, choices: tuple[str, ...] | list[str], max_distance: int | None = None
) -> str:
    """A near-miss suggestion, e.g. `feet` -> `feat`; "" when nothing is close (or the word is
    longer than MAX_WORD characters). `max_distance`: the most edits a typo may take (default:
    half the word, which suits short types and scopes)."""
    if not choices or len(word) > MAX_WORD:
        return ""
    lowered = {c.lower(): c for c in choices}
    w = word.lower()
    if w in lowered:
        return lowered[w]
    # prefix matches first ("feature" -> "feat", "bug" -> "bugfix")
    for c in choices:
        prefix = w.startswith(c.lower()) or c.lower().startswith(w)
        if prefix and min(len(word), len(c)) >= 3:
            return c
    # a choice inside the word ("bugfix" -> "fix"), then the closest within half its length
    for c in choices:
        if len(c) >= 3 and c.lower() in w:
            return c
    best = min(lowered, key=lambda c: (distance(w, c), c))
    dist = distance(w, best)
    limit = max(1, len(w) // 2) if max_distance is None else max_distance
    return lowered[best] if dist <= limit and dist < len(best) else ""


def hint(word: str, choices: tuple[str, ...] | list[str], otherwise: str = "") -> str:
    """`Did you mean `x`?` for a near miss, else `otherwise`."""
    guess = did_you_mean(word, choices)
    return f"Did you mean `{guess}`?" if guess else otherwise
