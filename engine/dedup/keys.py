"""Blocking keys and the bounds that decide which candidates can still reach a fuzzy threshold.

Scoring is ``rapidfuzz.fuzz.ratio`` on normalised values: 100 · 2·LCS / (|a| + |b|), where LCS is the
longest common subsequence (the Indel similarity).

Keys are, for a value holding any CJK character, its distinct ordered character pairs at most
``WINDOW`` (3) positions apart — "雷四房地" gives 雷四 雷房 雷地 四房 四地 房地 — and otherwise its distinct
trigrams; a value shorter than that is its own single key. Pairs survive a substituted or inserted
character between them (雷四房… and 雷五房… share 雷房), which contiguous bigrams do not.

Bounds, for a query a and a threshold t (and ratio ≥ t ⇔ LCS ≥ L = ⌈t·(|a|+|b|)/200⌉):

- length: ratio ≤ 200·min(|a|,|b|)/(|a|+|b|), so |b| ∈ [⌈|a|·t/(200−t)⌉, ⌊|a|·(200−t)/t⌋];
- pairs (CJK): the L−1 pairs of consecutive LCS characters are keys of both values unless the
  characters lie more than WINDOW apart in a or in b; that takes WINDOW unmatched characters
  between them, so at most ⌊(|a|−L)/W⌋ + ⌊(|b|−L)/W⌋ are lost and at least
  (L−1) − ⌊(|a|−L)/W⌋ − ⌊(|b|−L)/W⌋ keys are shared;
- trigrams (other text): deleting a character destroys at most 3 of a's trigrams and an insertion
  point at most 2, so at least (|a|−2) − 3·(|a|−L) − 2·min(|b|−L, L−1) are shared.

Counting distinct keys instead of occurrences loses at most a's repeated keys, which are subtracted.
A candidate below these bounds cannot score ≥ t and is never fetched. Keys shared by very many
records (the pairs of an industry word the normaliser does not know, such as 灯饰) are skipped for
speed; each skipped query key lowers the bound by one. Extra keys close the gap for short values:
a shorter candidate that must be a subsequence of the query is looked up whole (probes()), and
values one edit apart meet through their one-character deletions (extra_keys()). Recall is lost
only for a candidate more than one edit away that shares nothing but skipped keys with the query
(measured in bench/dedup.py).
"""
from __future__ import annotations

import hashlib
import math
import re

MAX_KEY = 200
# Prefixes of the extra keys (stored with size -1) so they never equal a pair or trigram key.
WHOLE = "\x1e"       # the whole normalised value
DELETED = "\x1d"     # the value with one character deleted
MAX_PROBES = 64
MAX_DELETE_LEN = 8   # values up to this long also file their one-character deletions


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF
            or 0x3040 <= o <= 0x30FF or 0xAC00 <= o <= 0xD7AF)


WINDOW = 3


_CJK_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff]")


def uses_pairs(value: str) -> bool:
    """CJK values are keyed by character pairs, others by trigrams."""
    return _CJK_RE.search(value) is not None


def _pairs(value: str) -> list[str]:
    n = len(value)
    return [value[i] + value[j] for i in range(n) for j in range(i + 1, min(n, i + WINDOW + 1))]


def _trigrams(value: str) -> list[str]:
    return [value[i:i + 3] for i in range(len(value) - 2)]


def grams(value: str) -> list[str]:
    """Every key occurrence of `value` (with repeats); the value itself when too short for one."""
    if not value:
        return []
    out = _pairs(value) if uses_pairs(value) else _trigrams(value)
    return out or [value]


def fuzzy_keys(value: str) -> set[str]:
    return set(grams(value))


def exact_key(value: str) -> str:
    """The key of an exact rule: the normalised value, hashed when too long for the key column."""
    if len(value) <= MAX_KEY:
        return value
    return "sha1:" + hashlib.sha1(value.encode("utf-8")).hexdigest()


def whole_key(value: str) -> str:
    """The key under which a fuzzy rule also files each value whole (for subsequence probes)."""
    return exact_key(WHOLE + value)


def deletions(value: str) -> set[str]:
    return {value[:i] + value[i + 1:] for i in range(len(value))} if len(value) > 1 else set()


def _keyed(prefix: str, values) -> list[str]:
    return [k if len(k) <= MAX_KEY else exact_key(k) for k in (prefix + v for v in values)]


def extra_keys(value: str) -> list[str]:
    """The keys a fuzzy rule files with size -1 beside the pairs/trigrams: the whole value and, for
    short values, its one-character deletions (so values one edit apart always meet, however common
    their other keys are: 欣花卉园艺 and 雅花卉园艺 both file 花卉园艺)."""
    out = _keyed(WHOLE, (value,))
    if len(value) <= MAX_DELETE_LEN:
        out.extend(_keyed(DELETED, deletions(value)))
    return out


def probe_keys(value: str, threshold: float) -> list[str]:
    """Extra keys to look up for a query: the value itself (identical values), its subsequences that
    a shorter candidate must equal (probes()), its deletions (one substitution away, against the
    candidates' deletions) and itself against the candidates' deletions (one insertion away)."""
    out = _keyed(WHOLE, (value, *probes(value, threshold)))
    out.extend(_keyed(DELETED, (value, *deletions(value))))
    return out


def probes(value: str, threshold: float, limit: int = MAX_PROBES) -> list[str]:
    """Shorter values that can only match by being a subsequence of `value`, to look up whole.

    For a shorter b with L = |b| (ratio ≥ t needs every character of b in order in a), the candidates
    are exactly a's subsequences of that length: enumerated, fewest deletions first, up to `limit`.
    They catch a stored value that shares nothing but skipped keys with the query (e.g. a name that
    normalised to its industry word alone).
    """
    la = len(value)
    lo, _ = size_range(la, threshold)
    wanted = {lb for lb in range(max(lo, 1), la) if min_lcs(la, lb, threshold) == lb}
    out: list[str] = []
    level = {value}
    for lb in range(la - 1, (min(wanted) if wanted else la) - 1, -1):
        if math.comb(la, lb) + len(out) > limit:
            break
        level = {d for s in level for d in deletions(s)}   # every subsequence of length lb
        if lb in wanted:
            out.extend(sorted(level))
    return out


def min_lcs(la: int, lb: int, threshold: float) -> int:
    """The smallest LCS for which ratio(a, b) ≥ threshold."""
    return max(0, math.ceil(threshold * (la + lb) / 200 - 1e-9))


def size_range(la: int, threshold: float) -> tuple[int, int]:
    """Lengths of b that can score ≥ threshold against a value of length la."""
    if threshold <= 0:
        return 0, 10 ** 9
    lo = math.ceil(la * threshold / (200 - threshold) - 1e-9) if threshold < 200 else la
    hi = math.floor(la * (200 - threshold) / threshold + 1e-9)
    return max(lo, 1), max(hi, la)


def skipped_in_chain(value: str, skipped: set[str]) -> int:
    """How many skipped keys can count against a candidate (what the shared-key bound must give up).

    For pairs: the bound counts pairs of consecutive characters of a common subsequence, so the
    skipped keys that matter are those that can be consecutive pairs of one subsequence of `value` —
    at most the best chain through it (a small DP); ‹教育›‹科技› and 技‹科技› cannot both be. For
    trigrams: every skipped key.
    """
    if not skipped:
        return 0
    if not uses_pairs(value):
        return len(skipped)
    n = len(value)
    best = [0] * n
    for j in range(n):
        top = 0
        for i in range(j):
            gain = 1 if j - i <= WINDOW and value[i] + value[j] in skipped else 0
            top = max(top, best[i] + gain)
        best[j] = top
    return max(best, default=0)


def needs(value: str, threshold: float, lost: int = 0, keys: set[str] | None = None) -> dict[int, int]:
    """{candidate length: distinct usable keys it must share} over the length range, the bound of
    shared_bound() less `lost` (skipped keys, see skipped_in_chain), never below 1; lengths that
    cannot reach the threshold are left out. Computed once per query (`keys`: its fuzzy_keys)."""
    lo, hi = size_range(len(value), threshold)
    occurrences = grams(value)
    repeated = len(occurrences) - len(keys if keys is not None else set(occurrences))
    out = {}
    for lb in range(lo, hi + 1):
        need = _bound(value, lb, threshold, repeated)
        if need is not None:
            out[lb] = max(1, need - lost)
    return out


def shared_bound(value: str, lb: int, threshold: float) -> int | None:
    """Distinct keys a candidate of length lb must share with `value` to possibly reach threshold.

    None when no candidate of that length can reach it; 0 when the bound gives no help.
    """
    occurrences = grams(value)
    return _bound(value, lb, threshold, len(occurrences) - len(set(occurrences)))


def _bound(value: str, lb: int, threshold: float, repeated: int) -> int | None:
    la = len(value)
    L = min_lcs(la, lb, threshold)
    if L > min(la, lb):
        return None
    if uses_pairs(value):
        if la < 2:
            return 1 if lb == la else 0
        bound = (L - 1) - (la - L) // WINDOW - (lb - L) // WINDOW
    else:
        if la < 3:
            return 1 if lb == la else 0
        bound = (la - 2) - 3 * (la - L) - 2 * min(lb - L, max(L - 1, 0))
    return max(0, bound - repeated)
