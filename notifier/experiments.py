"""A/B tests: which variant a recipient gets, and whether two variants' rates differ.

- `assign`: a stable hash of (test key, recipient) picks a label by weight, so a recipient
  always lands in the same place for the same weights. Assignments are kept by the caller once
  made: when weights change while a test runs, new recipients follow the new weights and those
  already assigned keep their variant.
- `compare`: the two-proportion z-test (pooled standard error) for "do the rates differ?", its
  two-sided p-value, and the 95% interval of the difference (unpooled standard error, Wald),
  as any statistics textbook gives them. Hand-written: it is two formulas and `math.erfc`, and
  scipy would add tens of megabytes to the image for them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# The two-sided 95% critical value of the standard normal distribution.
Z_95 = 1.959963984540054


class Verdict(StrEnum):
    """What `verdict` says once the sample is large enough."""

    A = "a"  # the control wins
    B = "b"  # the challenger wins
    NONE = "none"  # no significant difference at 5%


# Its values, as the API's schema lists them (ExperimentVerdictEnum).
VERDICTS = tuple(v.value for v in Verdict)


def bucket(test_key: str, recipient_key: str) -> float:
    """A number in [0, 1), the same for the same pair on every machine and in every version."""
    digest = hashlib.sha256(f"{test_key}\x00{recipient_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(test_key: str, recipient_key: str, weights: Sequence[tuple[str, int]]) -> str:
    """The label for this recipient, by weight (labels in the order given; weights > 0)."""
    total = sum(weight for _, weight in weights)
    if not weights or total <= 0 or any(weight < 0 for _, weight in weights):
        raise ValueError("at least one label with a positive weight, and no negative weight")
    point = bucket(test_key, recipient_key) * total
    for label, weight in weights:
        if point < weight:
            return label
        point -= weight
    return weights[-1][0]  # float rounding at the very top of the range


@dataclass(frozen=True)
class Comparison:
    rate_a: float
    rate_b: float
    difference: float  # rate_b - rate_a
    z: float
    p_value: float
    low: float  # the 95% interval of the difference
    high: float


def compare(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> Comparison:
    """B against A. ValueError unless 0 <= successes <= trials and trials > 0."""
    for successes, trials in ((successes_a, trials_a), (successes_b, trials_b)):
        if trials <= 0 or not 0 <= successes <= trials:
            raise ValueError("each arm needs trials > 0 and 0 <= successes <= trials")
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    difference = rate_b - rate_a
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if se_pooled == 0:  # both arms all successes or all failures: no evidence of a difference
        z, p_value = 0.0, 1.0
    else:
        z = difference / se_pooled
        p_value = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(rate_a * (1 - rate_a) / trials_a + rate_b * (1 - rate_b) / trials_b)
    return Comparison(
        rate_a=rate_a,
        rate_b=rate_b,
        difference=difference,
        z=z,
        p_value=p_value,
        low=difference - Z_95 * se,
        high=difference + Z_95 * se,
    )


def verdict(comparison: Comparison, *, trials: tuple[int, int], minimum: int) -> Verdict | None:
    """A, B or NONE (no significant difference at 5%), or None while either arm has fewer than
    `minimum` trials (no verdict before the sample is large enough)."""
    if min(trials) < minimum:
        return None
    if comparison.p_value >= 0.05:
        return Verdict.NONE
    return Verdict.B if comparison.difference > 0 else Verdict.A
