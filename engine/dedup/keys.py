"""Blocking keys and the bounds that decide which candidates can still reach a fuzzy threshold.

Scoring is ``rapidfuzz.fuzz.ratio`` on normalised values: 100 · 2·LCS / (|a| + |b|), where LCS is the
longest common subsequence (the Indel similarity). Keys are the distinct q-grams of a normalised
value: character bigrams (q = 2) when it holds any CJK character, trigrams (q = 3) otherwise; a value
shorter than q is its own single key.

Two bounds follow from the score's definition, for a query a and a threshold t:

- length: ratio ≤ 200·min(|a|,|b|)/(|a|+|b|), so |b| ∈ [⌈|a|·t/(200−t)⌉, ⌊|a|·(200−t)/t⌋];
- shared grams: ratio ≥ t needs LCS ≥ L = ⌈t·(|a|+|b|)/200⌉. Turning a into b then deletes
  |a|−L characters of a (each destroys at most q of a's q-grams) and inserts |b|−L characters
  (each insertion point destroys at most q−1), so at least
  (|a|−q+1) − q·(|a|−L) − (q−1)·min(|b|−L, L−1) of a's grams survive intact in b. Counting distinct
  keys instead of gram occurrences loses at most a's repeated grams, which are subtracted.

A candidate whose length or number of shared keys is below these bounds cannot score ≥ t, so it is
never fetched. Keys shared by very many records ("科技") are skipped for speed; each skipped query
key lowers the shared-key bound by one, so recall is lost only for a candidate that shares nothing
but skipped keys with the query (measured in bench/dedup.py).
"""
from __future__ import annotations

import hashlib
import math

MAX_KEY = 200


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF
            or 0x3040 <= o <= 0x30FF or 0xAC00 <= o <= 0xD7AF)


def gram_size(value: str) -> int:
    return 2 if any(is_cjk(ch) for ch in value) else 3


def grams(value: str) -> list[str]:
    """All q-grams of `value` in order (with repeats); the value itself when shorter than q."""
    q = gram_size(value)
    if len(value) < q:
        return [value] if value else []
    return [value[i:i + q] for i in range(len(value) - q + 1)]


def fuzzy_keys(value: str) -> set[str]:
    return set(grams(value))


def exact_key(value: str) -> str:
    """The key of an exact rule: the normalised value, hashed when too long for the key column."""
    if len(value) <= MAX_KEY:
        return value
    return "sha1:" + hashlib.sha1(value.encode("utf-8")).hexdigest()


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


def shared_bound(value: str, lb: int, threshold: float) -> int | None:
    """Distinct keys a candidate of length lb must share with `value` to possibly reach threshold.

    None when no candidate of that length can reach it; 0 when the bound gives no help.
    """
    la = len(value)
    q = gram_size(value)
    L = min_lcs(la, lb, threshold)
    if L > min(la, lb):
        return None
    if la < q:
        return 1 if lb == la else 0
    all_grams = la - q + 1
    distinct = len(set(value[i:i + q] for i in range(all_grams)))
    preserved = all_grams - q * (la - L) - (q - 1) * min(lb - L, max(L - 1, 0))
    return max(0, preserved - (all_grams - distinct))
