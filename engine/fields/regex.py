"""A field's `pattern`: matched by RE2 in time linear in the value, never by a backtracking blow-up.

Python's `re` backtracks, so a tenant pattern such as ``(a+)+b`` takes seconds for a 28-character
value and doubles with every character: one form post could hold a worker for hours. RE2 (the
``google-re2`` binding) runs every pattern it accepts in linear time. It has no lookaround and no
backreferences; a pattern using those (the sample's "a real name, not 王总" uses ``(?!…)``) is run
by `re` only when it has no quantifier inside a repeated group, no alternation inside one and at
most two unbounded quantifiers, which keeps `re` polynomial and low (``(?!.*(总|经理)$).{2,}``
is linear). Anything else is a `formwork check` error at the pattern's FILE:LINE:COL.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import re2

try:  # the parser `re` itself uses; private, but the only parser of exactly its syntax
    from re import _constants as _sre, _parser as _sre_parse
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_REPEATS = tuple(getattr(_sre, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre, n))
_MAX_UNBOUNDED = 2


def _re2_options() -> "re2.Options":
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return options


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a field's pattern, or None when it can."""
    return _compile(pattern)[1]


def fullmatches(pattern: str, text: str) -> bool:
    """True when `text` matches all of `pattern` (a pattern `pattern_problem` accepted)."""
    match, problem = _compile(pattern)
    if match is None:
        raise ValueError(problem)
    return match(text)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> tuple[Callable[[str], bool] | None, str | None]:
    """(fullmatch function, None) or (None, why not); cached because every write checks patterns."""
    try:
        rx2 = re2.compile(pattern, _re2_options())
    except re2.error as exc:
        re2_reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) \
            else str(exc)
    else:
        return (lambda text: rx2.fullmatch(text) is not None), None
    try:
        rx = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return None, f"pattern is not a valid regular expression: {exc}"
    unsafe = _backtracking_risk(pattern)
    if unsafe:
        return None, (f"pattern uses {unsafe}; such a pattern can take exponential time on some values, "
                      f"so Formwork refuses it (RE2 says: {re2_reason}). Write it without lookaround "
                      f"(?=…)/(?!…) and backreferences, or without a quantifier or '|' inside a repeated group")
    return (lambda text: rx.fullmatch(text) is not None), None


def _backtracking_risk(pattern: str) -> str | None:
    """What makes a pattern RE2 refused risky for backtracking `re`, or None when it is safe."""
    try:
        tree = _sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - re.compile accepted it; treat an unparsable one as risky
        return "a construct Formwork cannot analyse"
    unbounded = 0

    def walk(items, in_repeat: bool) -> str | None:
        nonlocal unbounded
        for op, av in items:
            if op in _REPEATS:
                low, high, body = av
                repeated = high == _sre.MAXREPEAT or high > 1
                if repeated and in_repeat:
                    return "a quantifier inside a repeated group (like (a+)+)"
                if high == _sre.MAXREPEAT:
                    unbounded += 1
                    if unbounded > _MAX_UNBOUNDED:
                        return (f"lookaround or a backreference with more than {_MAX_UNBOUNDED} "
                                f"unbounded quantifiers (*, +, {{n,}})")
                found = walk(body, in_repeat or repeated)
            elif op == _sre.BRANCH:
                if in_repeat:
                    return "an alternation '|' inside a repeated group (like (a|aa)*)"
                found = next((p for p in (walk(b, in_repeat) for b in av[1]) if p), None)
            elif op == _sre.SUBPATTERN:
                found = walk(av[-1], in_repeat)
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                found = walk(av[1], in_repeat)
            elif op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
                found = "a backreference (\\1, (?P=name) or (?(1)…))"
            elif getattr(_sre, "ATOMIC_GROUP", None) == op:
                found = walk(av, in_repeat)
            else:
                found = None
            if found:
                return found
        return None

    return walk(tree, False)
