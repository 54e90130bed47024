"""The pipeline benchmark's bookkeeping: in-flight sends per worker process, the in-flight
limit read from the settings, worker RSS peak and end, and the chaos run's latency line."""

from __future__ import annotations

from typing import Any

from bench.chaos import ChaosConfig, previous_drain, provider_latency
from bench.drain import DrainResult, Latency
from bench.pipeline import in_flight_limit, per_process
from bench.procs import RssSampler


def test_in_flight_per_worker_process_is_the_simulators_maximum_over_the_processes() -> None:
    drains = [
        DrainResult(rate=80.0, seconds=25.0, stats={}, sim={"max_in_flight": 16}),
        DrainResult(rate=81.0, seconds=24.0, stats={}, sim={"max_in_flight": 13}),
    ]

    assert per_process(drains, workers=2) == [8.0, 6.5]


def test_the_in_flight_limit_is_read_from_the_settings(settings: Any) -> None:
    settings.PROVIDER_MAX_IN_FLIGHT = {"sendgrid": 48}
    assert in_flight_limit() == 48

    settings.PROVIDER_MAX_IN_FLIGHT = {}
    assert in_flight_limit() == 1


class FakeGroup:
    """A process group whose RSS the test sets."""

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}
        self.running = True

    def alive(self) -> bool:
        return self.running

    def rss(self) -> dict[int, int]:
        return dict(self.sizes)


def test_rss_sampler_keeps_the_peak_and_the_last_sample_while_alive() -> None:
    # Given a worker group sampled at three moments, then stopped
    group = FakeGroup()
    sampler = RssSampler()
    sampler.watch("workers", group)
    for sizes in ({1: 100, 2: 50}, {1: 300, 2: 60}, {1: 120, 2: 40}):
        group.sizes = sizes
        sampler.sample()
    group.running = False
    sampler.sample()

    # Then the peak is the largest sum, the end the last sample taken while it ran
    assert sampler.peaks["workers"] == 360
    assert sampler.peak_single["workers"] == 300
    assert sampler.last["workers"] == 160


def test_latency_and_the_chaos_runs_drain_line_name_what_was_simulated() -> None:
    assert Latency(200, 50).describe() == "200 ms +/- 50"
    assert Latency().describe() == "0 ms"
    assert provider_latency(ChaosConfig(provider_ms=200, provider_jitter_ms=100)) == "100-300 ms"
    assert provider_latency(ChaosConfig()) == "0 ms"
    assert previous_drain() == "277s for 50,000 (2026-11-30, simulators answering at once)"
