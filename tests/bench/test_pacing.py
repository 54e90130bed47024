"""Pacing by measured capacity (bench/pacing.py): a latency figure is taken at a fraction of
the lowest capacity measured in the same run, never at a made-up rate."""

from __future__ import annotations

import math

import pytest

from bench.pacing import MIN_RATE, pace


def test_pace_is_the_fraction_of_the_lowest_measured_capacity() -> None:
    # Given the API's peak below the workers' drain rate
    capacities = {"API peak": 120.0, "drain": 900.0}

    # When the figure is paced at half
    paced = pace(capacities, 0.5)

    # Then the rate is half the API's peak, and the note says which capacity limited it
    assert paced.rate == 60.0
    assert paced.capacity == 120.0
    assert paced.limited_by == "API peak"
    assert paced.describe() == (
        "paced at 60.0/s = 50% of 120/s, the lowest capacity measured in this run "
        "(API peak; measured: API peak 120/s, drain 900/s)"
    )


def test_pace_follows_the_drain_when_the_workers_are_the_slower_stage() -> None:
    # Given providers answering slowly: the drain rate falls below the API's peak
    paced = pace({"API peak": 120.0, "drain": 76.0}, 0.5)

    assert paced.rate == 38.0
    assert paced.limited_by == "drain"


@pytest.mark.parametrize("unmeasured", [math.nan, 0.0, -3.0, math.inf])
def test_a_capacity_that_was_not_measured_is_left_out(unmeasured: float) -> None:
    paced = pace({"API peak": unmeasured, "received on sockets": 40.0}, 0.5)

    assert paced.rate == 20.0
    assert paced.limited_by == "received on sockets"


def test_nothing_measured_is_an_error_not_a_default_rate() -> None:
    with pytest.raises(RuntimeError, match="no capacity measured"):
        pace({"API peak": math.nan, "drain": 0.0})


def test_a_tiny_capacity_is_paced_at_the_floor() -> None:
    assert pace({"drain": 0.5}, 0.5).rate == MIN_RATE


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_a_fraction_outside_zero_to_one_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="pace fraction"):
        pace({"drain": 100.0}, fraction)
