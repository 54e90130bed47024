"""Latency histograms with fixed bucket bounds, so that rows for different hours, templates and
channels add up bucket by bucket, and percentiles come from the sum.

A histogram is a list of `len(BOUNDS_MS) + 1` counts: bucket i holds samples of at most
`BOUNDS_MS[i]` milliseconds (and more than the bound before it); the last holds the rest.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

BOUNDS_MS: tuple[int, ...] = (
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    900_000,
    3_600_000,
    21_600_000,
    86_400_000,
)
SIZE = len(BOUNDS_MS) + 1


def empty() -> list[int]:
    return [0] * SIZE


def bucket(ms: float) -> int:
    """The bucket a sample of `ms` milliseconds falls in (negative clock skew counts as 0)."""
    return bisect.bisect_left(BOUNDS_MS, max(0.0, ms))


def add(into: list[int], other: Sequence[int]) -> list[int]:
    """Add `other` into `into` bucket by bucket (a shorter or empty `other` adds zeros)."""
    if len(into) < SIZE:
        into.extend([0] * (SIZE - len(into)))
    for i, count in enumerate(other[:SIZE]):
        into[i] += int(count)
    return into


def total(histograms: Iterable[Sequence[int]]) -> list[int]:
    summed = empty()
    for histogram in histograms:
        add(summed, histogram)
    return summed


def percentile(histogram: Sequence[int], q: float) -> int | None:
    """The upper bound (ms) of the bucket holding the q-th quantile (0 < q <= 1), None without
    samples; a sample beyond the last bound reads as that bound (a floor, said in the docs)."""
    count = sum(histogram)
    if count == 0:
        return None
    # ceil(q * count), at least 1; rounded first so that 0.95 * 100 is 95, not 96
    rank = max(1, math.ceil(round(q * count, 6)))
    seen = 0
    for i, n in enumerate(histogram):
        seen += n
        if seen >= rank:
            return BOUNDS_MS[min(i, len(BOUNDS_MS) - 1)]
    return BOUNDS_MS[-1]
