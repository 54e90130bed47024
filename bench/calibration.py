"""A machine calibration printed beside every run, so figures from different machines (or from
one machine on a busy and a quiet day) can be compared: a fixed pure-Python loop on one core.

The loop does the kind of work the service's processes do most (bytecode dispatch, small-int
arithmetic, attribute-free local variables), in one thread, so it measures one core's speed
for CPython as installed, not the number of cores. The best of several timings is the
machine; the median shows how much other work was competing for that core at the time.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

LOOP_ITERATIONS = 1_000_000  # one timing takes ~50-150 ms on a current x86 core
TIMINGS = 7


def cpu_loop(iterations: int) -> int:
    """The fixed workload: never change it, or earlier calibrations stop being comparable."""
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


@dataclass
class Calibration:
    iterations: int
    best_ms: float
    median_ms: float
    python: str
    cpu: str

    @property
    def ops_per_s(self) -> float:
        """Loop iterations per second on one core, from the best timing."""
        return self.iterations / (self.best_ms / 1000) if self.best_ms > 0 else float("nan")

    def describe(self) -> str:
        return (
            f"calibration: {self.iterations:,}-iteration pure-Python loop on one core, best "
            f"{self.best_ms:.1f} ms ({self.ops_per_s / 1e6:.2f} M it/s), median of {TIMINGS} "
            f"{self.median_ms:.1f} ms; CPython {self.python}; {self.cpu}"
        )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calibrate(iterations: int = LOOP_ITERATIONS, timings: int = TIMINGS) -> Calibration:
    """Time `cpu_loop(iterations)` `timings` times (after one untimed warm-up)."""
    cpu_loop(iterations // 10)
    samples = []
    for _ in range(max(1, timings)):
        started = time.perf_counter()
        cpu_loop(iterations)
        samples.append((time.perf_counter() - started) * 1000)
    return Calibration(
        iterations=iterations,
        best_ms=min(samples),
        median_ms=statistics.median(samples),
        python=platform.python_version(),
        cpu=cpu_model(),
    )
