"""A/B assignment and the two-proportion test (notifier/experiments.py)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from notifier.experiments import assign, bucket, compare, verdict


def test_assignment_is_sticky_and_follows_the_weights() -> None:
    weights = [("A", 70), ("B", 30)]
    labels = {f"user-{n}": assign("welcome", f"user-{n}", weights) for n in range(1000)}

    # The same recipient gets the same label, however often asked
    assert all(assign("welcome", key, weights) == label for key, label in labels.items())
    # 1,000 recipients split within a few percent of 70/30
    counts = Counter(labels.values())
    assert 670 <= counts["A"] <= 730
    assert counts["A"] + counts["B"] == 1000


def test_another_test_key_shuffles_recipients_independently() -> None:
    weights = [("A", 50), ("B", 50)]
    same = sum(
        assign("welcome", f"u{n}", weights) == assign("digest", f"u{n}", weights)
        for n in range(1000)
    )

    assert 430 <= same <= 570  # about half agree by chance, not all


def test_raising_a_weight_moves_only_recipients_at_the_boundary() -> None:
    before = {n: assign("t", f"u{n}", [("A", 50), ("B", 50)]) for n in range(1000)}
    after = {n: assign("t", f"u{n}", [("A", 60), ("B", 40)]) for n in range(1000)}

    # A's share grows: nobody leaves A, some of B move to it
    assert all(after[n] == "A" for n in before if before[n] == "A")
    assert 50 <= sum(before[n] == "B" and after[n] == "A" for n in before) <= 150


def test_bucket_is_fixed_across_runs() -> None:
    # sha256("t\x00u1")[:8] as a fraction of 2**64, computed once and written down: a change of
    # the hash would silently reshuffle every running test
    assert bucket("t", "u1") == int.from_bytes(bytes.fromhex("dd9ceb2934c7fe3a"), "big") / 2**64


@pytest.mark.parametrize(
    "weights", [[], [("A", 0)], [("A", 5), ("B", -1)]], ids=["empty", "zero", "negative"]
)
def test_weights_must_be_positive(weights: list[tuple[str, int]]) -> None:
    with pytest.raises(ValueError, match="positive weight"):
        assign("t", "u", weights)


def test_compare_against_a_textbook_example_worked_by_hand() -> None:
    # A: 45 of 100 opened, B: 60 of 100.
    # Pooled p = 105/200 = 0.525; SE = sqrt(0.525 * 0.475 * (1/100 + 1/100)) = 0.0706222
    # z = (0.60 - 0.45) / 0.0706222 = 2.12397; two-sided p = 2 * (1 - Phi(2.12397)) = 0.03367
    # Unpooled SE = sqrt(0.45 * 0.55 / 100 + 0.6 * 0.4 / 100) = sqrt(0.004875) = 0.0698212
    # 95% interval: 0.15 -/+ 1.959964 * 0.0698212 = 0.15 -/+ 0.136847 = [0.013153, 0.286847]
    result = compare(45, 100, 60, 100)

    assert result.rate_a == 0.45
    assert result.rate_b == 0.6
    assert result.z == pytest.approx(2.12397, abs=1e-5)
    assert result.p_value == pytest.approx(0.03367, abs=1e-5)
    assert result.low == pytest.approx(0.013153, abs=1e-6)
    assert result.high == pytest.approx(0.286847, abs=1e-6)
    assert verdict(result, trials=(100, 100), minimum=100) == "b"
    assert verdict(result, trials=(100, 100), minimum=101) is None


def test_no_verdict_for_a_difference_chance_explains() -> None:
    # 50/1000 vs 55/1000: pooled p = 0.0525, SE = sqrt(0.0525 * 0.9475 * 0.002) = 0.0099743,
    # z = 0.005 / 0.0099743 = 0.50129, p = 2 * (1 - Phi(0.50129)) = 2 * (1 - 0.69192) = 0.6162
    result = compare(50, 1000, 55, 1000)

    assert result.z == pytest.approx(0.50129, abs=1e-5)
    assert result.p_value == pytest.approx(0.6162, abs=1e-4)
    assert verdict(result, trials=(1000, 1000), minimum=100) == "none"


def test_a_better_a_is_named() -> None:
    result = compare(300, 1000, 200, 1000)

    assert result.difference == pytest.approx(-0.1)
    assert result.p_value < 1e-6
    assert verdict(result, trials=(1000, 1000), minimum=100) == "a"


def test_identical_extremes_are_no_evidence() -> None:
    result = compare(0, 50, 0, 80)

    assert (result.z, result.p_value) == (0.0, 1.0)
    assert math.isclose(result.low, 0.0)
    assert math.isclose(result.high, 0.0)


@pytest.mark.parametrize("arm", [(1, 0), (-1, 10), (11, 10)])
def test_impossible_counts_are_refused(arm: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="trials > 0"):
        compare(*arm, 5, 10)
