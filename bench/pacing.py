"""Pacing by measured capacity: every latency figure is taken at a fraction of the capacity
measured in the same run (on the same processes), never at a fixed rate.

A fixed rate means a different thing on every machine: 50/s was half of what the API took on
one day's machine and more than all of it on another's, and a latency figure taken above
capacity measures the queue, not the service. A path's capacity is the lowest of its stages
that were measured (the API's closed-loop peak for the request the figure sends, the workers'
drain rate, the sockets' receive rate); the figure is paced at `PACE_FRACTION` of it.

bench/ingestion.py paces its p99 at half its own measured peak already; `pace()` is the helper
for any figure that combines capacities measured elsewhere in the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bench import load

PACE_FRACTION = 0.5  # latency figures: at half the capacity measured in the same run
MIN_RATE = 1.0  # never pace below one request per second (a figure needs samples)
PROBE_SECONDS = 5.0  # a closed-loop capacity probe: long enough to pass start-up
PROBE_CONNECTIONS = 16  # as many as the ingestion peak uses


@dataclass(frozen=True)
class Pace:
    rate: float
    capacity: float
    limited_by: str
    fraction: float
    capacities: dict[str, float]

    def describe(self) -> str:
        measured = ", ".join(f"{name} {value:,.0f}/s" for name, value in self.capacities.items())
        return (
            f"paced at {self.rate:,.1f}/s = {self.fraction:.0%} of {self.capacity:,.0f}/s, the "
            f"lowest capacity measured in this run ({self.limited_by}; measured: {measured})"
        )


def usable(value: float) -> bool:
    return not math.isnan(value) and not math.isinf(value) and value > 0


def pace(
    capacities: Mapping[str, float], fraction: float = PACE_FRACTION, floor: float = MIN_RATE
) -> Pace:
    """`fraction` of the lowest of `capacities` (name -> per second); a capacity that was not
    measured (NaN, zero) is left out, and if none was measured that is an error: pacing at a
    made-up rate would give a figure that means nothing."""
    if not 0 < fraction <= 1:
        raise ValueError(f"pace fraction must be in (0, 1], got {fraction}")
    measured = {name: value for name, value in capacities.items() if usable(value)}
    if not measured:
        raise RuntimeError(f"no capacity measured to pace by: {dict(capacities)}")
    name, capacity = min(measured.items(), key=lambda item: item[1])
    return Pace(
        rate=max(floor, fraction * capacity),
        capacity=capacity,
        limited_by=name,
        fraction=fraction,
        capacities=dict(capacities),
    )


def api_capacity(
    url: str,
    path: str,
    *,
    headers: dict[str, str],
    body_fn: load.BodyFn,
    seconds: float = PROBE_SECONDS,
    connections: int = PROBE_CONNECTIONS,
) -> load.LoadResult:
    """The API's closed-loop peak for the very request a paced figure will send (2xx answers
    per second: `.rps`), `connections` clients back to back for `seconds`."""
    return load.closed(
        url, path, headers=headers, body_fn=body_fn, seconds=seconds, connections=connections
    )
