"""The machine calibration printed beside every benchmark run (bench/calibration.py)."""

from __future__ import annotations

import pytest

from bench.calibration import calibrate, cpu_loop


def test_the_calibration_workload_is_fixed() -> None:
    # The loop must stay the same, or calibrations from different days stop being comparable:
    # (0 + 1 + 4 + ... + 81) = 285, and the sum of squares below 2,000 modulo 1,000,003.
    assert cpu_loop(10) == 285
    assert cpu_loop(2000) == sum(i * i for i in range(2000)) % 1_000_003


def test_calibration_reports_the_best_and_median_timing_and_the_rate() -> None:
    # When the loop is timed a few times
    found = calibrate(iterations=20_000, timings=3)

    # Then the best is the fastest timing, and the rate is derived from it
    assert 0 < found.best_ms <= found.median_ms
    assert found.ops_per_s == pytest.approx(20_000 / (found.best_ms / 1000))
    text = found.describe()
    assert text.startswith("calibration: 20,000-iteration pure-Python loop on one core, best ")
    assert f"({found.ops_per_s / 1e6:.2f} M it/s)" in text
    assert f"CPython {found.python}" in text
