"""A project's regular expressions (types, scopes, branch patterns and exemptions), checked for
catastrophic backtracking before they ever run: Python's `re` has no time limit, and a pattern such
as `(a+)+` takes exponential time on a name that almost matches.

The check reads the pattern's parse tree (re._parser, CPython's own) and refuses the shapes that
backtrack exponentially: a repeat inside a repeat whose iterations no mandatory delimiter separates
(`(a+)+`, `(\\w+\\s?)*`; `[a-z0-9]+(-[a-z0-9]+)*` and `BA-\\d+(?:, ?BA-\\d+)*` are fine: `-` and `,`
end each iteration), and a repeated alternation whose branches can start alike (`(a|ab)*`); and the
one that takes a high power of the length: three repeats in a row that can take the same characters
(`.*a.*a.*b`). It errs on the side of refusing; the rules also bound the length of what a pattern is
matched against (MATCH_LIMIT), which keeps two such repeats in a row quick.
Loaded only when a config is validated (a warm hook run never imports it).
"""

from __future__ import annotations

import re._constants as C
import re._parser as P

from devkit.record import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    Matcher = Callable[[str], bool]

_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT)
_CATEGORIES: dict[Any, Matcher] = {
    C.CATEGORY_DIGIT: str.isdecimal,
    C.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdecimal(),
    C.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
    C.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
    C.CATEGORY_SPACE: str.isspace,
    C.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
}
_ENUMERABLE = 4096  # a character set up to this size is listed, to test it against another


def backtracking_risk(pattern: str) -> str:
    """Why pattern can backtrack exponentially ("" when it cannot, as far as this check sees)."""
    try:
        tree = P.parse(pattern)
    except Exception:  # re.error: the caller reports compile errors in its own words
        return ""
    return _scan(tree)


def _scan(items: Any) -> str:
    if _longest_run(items) >= 3:
        return "three repeats in a row that can take the same characters"
    for op, av in items:
        if op in _REPEATS:
            _, most, body = av
            if most > 1 and _repeats_inside(body) and not _delimited(body):
                return "a repeat inside a repeat, with nothing that ends each round"
            if most > 1 and _alike_branches(body):
                return "a repeated alternation whose branches can start with the same character"
            found = _scan(body)
        elif op is C.SUBPATTERN:
            found = _scan(av[3])
        elif op is C.BRANCH:
            found = next((r for r in map(_scan, av[1]) if r), "")
        elif op in (C.ASSERT, C.ASSERT_NOT):
            found = _scan(av[1])
        elif op is C.GROUPREF_EXISTS:
            found = _scan(av[1]) or (_scan(av[2]) if av[2] else "")
        else:  # a single character, an anchor, an atomic group or a possessive repeat
            found = ""
        if found:
            return found
    return ""


def _longest_run(items: Any, run: list[list[Matcher]] | None = None) -> int:
    """The most unbounded repeats in a row that no mandatory character between them separates
    (`.*a.*a.*b`: the `a`s separate nothing, the dot takes them): n of them in a row backtrack in
    time of the n-th power of the length on a near miss. Groups count as part of the row."""
    run = [] if run is None else run
    longest = len(run)
    for op, av in items:
        if op in _REPEATS and av[1] == C.MAXREPEAT:
            run.append(_matchers(av[2]))
        elif op in _REPEATS and av[1] == 1:  # optional: its contents may or may not be there
            longest = max(longest, _longest_run(av[2], list(run)))
        elif op is C.SUBPATTERN:
            longest = max(longest, _longest_run(av[3], run))
        else:
            listed = _listed(op, av)
            if listed is not None and not any(
                m(ch) for ms in run for m in ms for ch in _with_case(listed)
            ):
                run.clear()  # a character none of the repeats can take ends the row
        longest = max(longest, len(run))
    return longest


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-sequences of one node (what a repeat, a group, a branch or an assertion holds)."""
    if op in _REPEATS or op is C.POSSESSIVE_REPEAT:
        return [av[2]]
    if op is C.SUBPATTERN:
        return [av[3]]
    if op is C.BRANCH:
        return list(av[1])
    if op in (C.ASSERT, C.ASSERT_NOT):
        return [av[1]]
    if op is C.ATOMIC_GROUP:
        return [av]
    if op is C.GROUPREF_EXISTS:
        return [av[1]] + ([av[2]] if av[2] else [])
    return []


def _inner_repeats(items: Iterable[Any]) -> list[Any]:
    """The bodies of every repeat of more than one round inside items, at any depth."""
    out = []
    for op, av in items:
        if op in _REPEATS and av[1] > 1:
            out.append(av[2])
        for child in _children(op, av):
            out += _inner_repeats(child)
    return out


def _repeats_inside(body: Any) -> bool:
    return bool(_inner_repeats(body))


def _matcher(op: Any, av: Any) -> Matcher | None:
    """What one single-character node accepts; None for any other node."""
    if op is C.LITERAL:
        return lambda ch: ch == chr(av)
    if op is C.NOT_LITERAL:
        return lambda ch: ch != chr(av)
    if op is C.ANY:
        return lambda ch: True
    if op is C.IN:
        return _set_matcher(av)
    return None


def _set_matcher(items: list[Any]) -> Matcher:
    negate = any(op is C.NEGATE for op, _ in items)
    tests: list[Matcher] = []
    for op, av in items:
        if op is C.LITERAL:
            tests.append(lambda ch, c=av: ord(ch) == c)
        elif op is C.RANGE:
            tests.append(lambda ch, lo=av[0], hi=av[1]: lo <= ord(ch) <= hi)
        elif op is C.CATEGORY:
            tests.append(_CATEGORIES.get(av, lambda ch: True))
    return lambda ch: any(t(ch) for t in tests) != negate


def _listed(op: Any, av: Any) -> set[str] | None:
    """The characters a single-character node accepts, when they are few enough to list."""
    if op is C.LITERAL:
        return {chr(av)}
    if op is not C.IN or any(o in (C.NEGATE, C.CATEGORY) for o, _ in av):
        return None
    chars: set[str] = set()
    for o, v in av:
        if o is C.LITERAL:
            chars.add(chr(v))
        elif o is C.RANGE:
            if v[1] - v[0] > _ENUMERABLE:
                return None
            chars.update(map(chr, range(v[0], v[1] + 1)))
    return chars


def _with_case(chars: set[str]) -> set[str]:
    """The characters and their other cases (a pattern may carry (?i))."""
    cased = {c.lower() for c in chars} | {c.upper() for c in chars}
    return chars | {c for c in cased if len(c) == 1}  # `ß`.upper() is two characters


def _matchers(items: Iterable[Any]) -> list[Matcher]:
    """What each single-character node inside items accepts, at any depth."""
    out = []
    for op, av in items:
        m = _matcher(op, av)
        if m is not None:
            out.append(m)
        for child in _children(op, av):
            out += _matchers(child)
    return out


def _mandatory_listed(body: Any) -> list[set[str]]:
    """The listed characters of the single-character nodes each round must match (the body's own
    sequence, and the groups in it)."""
    out = []
    for op, av in body:
        listed = _listed(op, av)
        if listed is not None:
            out.append(_with_case(listed))
        elif op is C.SUBPATTERN:
            out += _mandatory_listed(av[3])
    return out


def _delimited(body: Any) -> bool:
    """Whether each round holds a character no inner repeat can take (it splits the rounds one way)."""
    inner = [m for rep in _inner_repeats(body) for m in _matchers(rep)]
    return any(not any(m(ch) for m in inner for ch in delim) for delim in _mandatory_listed(body))


def _first(items: Any) -> tuple[Any, Any] | None:
    """The node a sequence starts with, through groups; None when it may start with anything."""
    for op, av in items:
        if op is C.SUBPATTERN:
            return _first(av[3])
        if _matcher(op, av) is not None:
            return op, av
        return None
    return None


def _alike_branches(body: Any) -> bool:
    """Whether body holds an alternation two of whose branches can start with the same character."""
    for op, av in body:
        if op is C.BRANCH:
            firsts = [_first(alt) for alt in av[1]]
            for i, a in enumerate(firsts):
                if any(_overlap(a, b) for b in firsts[i + 1 :]):
                    return True
        if any(_alike_branches(child) for child in _children(op, av) if op is not C.BRANCH):
            return True
    return False


def _overlap(a: tuple[Any, Any] | None, b: tuple[Any, Any] | None) -> bool:
    if a is None or b is None:
        return True
    for one, other in ((a, b), (b, a)):
        listed = _listed(*one)
        if listed is not None:
            test = _matcher(*other)
            return test is None or any(test(ch) for ch in _with_case(listed))
    return True
