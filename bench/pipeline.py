"""(3) Pipeline and (5) memory: a backlog of email deliveries drained by real workers to the
SendGrid simulator answering at once and after a provider latency (200 ms +/- 50 by default),
beside a no-op task drained by the same worker configuration; accept->sent paced at a fraction
of the capacity measured in this run. The mechanics are in bench/drain.py."""

from __future__ import annotations

from dataclasses import dataclass

from bench import load
from bench.drain import (
    NO_LATENCY,
    WARMUP_SECONDS,
    DrainResult,
    Latency,
    WorkerConfig,
    accept_to_sent,
    drain_deliveries,
    drain_noop,
    single_body,
)
from bench.env import load_average, process_env
from bench.ingestion import API_PATH
from bench.pacing import PACE_FRACTION, Pace, api_capacity, pace
from bench.procs import Simulator, Web
from bench.report import Figure
from bench.seed import Seed

MB = 1024 * 1024
# The share of the 0 ms drain rate the pipeline must keep with the provider answering slowly.
LATENCY_TARGET = 0.8
# The setting that bounds a worker process's concurrent SendGrid sends.
IN_FLIGHT_SETTING = "SENDGRID_MAX_IN_FLIGHT"


@dataclass
class PipelineConfig(WorkerConfig):
    backlog: int = 20_000
    latency_seconds: int = 15
    memory_small: int = 2_000
    repeats: int = 3
    provider_ms: float = 200.0
    provider_jitter_ms: float = 50.0
    pace_fraction: float = PACE_FRACTION
    # Also drain with the analytics fold on and off, alternating (bench/analytics_fold.py).
    analytics_overhead: bool = False

    @property
    def slow(self) -> Latency:
        return Latency(self.provider_ms, self.provider_jitter_ms)


def in_flight_limit() -> int:
    """The per-process in-flight limit for SendGrid sends (PROVIDER_MAX_IN_FLIGHT)."""
    from apps.deliveries.providers import provider_max_in_flight

    return provider_max_in_flight("sendgrid")


def per_process(drains: list[DrainResult], workers: int) -> list[float]:
    """The simulator's maximum of concurrent requests over each drain, per worker process."""
    return [d.max_in_flight / max(1, workers) for d in drains]


def run_pipeline(web: Web, seed: Seed, cfg: PipelineConfig, sim: Simulator) -> list[Figure]:
    env = process_env(SENDGRID_API_URL=sim.url, SENDGRID_API_KEY="SG.bench")
    from apps.core.broker import redis_client

    r = redis_client(env["REDIS_URL"])
    small = drain_deliveries(web, seed, cfg, env, r, cfg.memory_small, sim=sim)
    # At 0 ms, at the provider latency and the no-op ceiling alternately, `repeats` times:
    # medians (a drain takes 20 s or so, and this machine's other work comes and goes).
    fast: list[DrainResult] = []
    slow: list[DrainResult] = []
    noops: list[float] = []
    for _ in range(max(1, cfg.repeats)):
        fast.append(drain_deliveries(web, seed, cfg, env, r, cfg.backlog, sim=sim))
        if cfg.provider_ms > 0:
            slow.append(
                drain_deliveries(web, seed, cfg, env, r, cfg.backlog, sim=sim, latency=cfg.slow)
            )
        noops.append(drain_noop(cfg, env, r, cfg.backlog))
    load_drains = load_average()
    fast_rate = load.median([d.rate for d in fast])
    slow_rate = load.median([d.rate for d in slow])
    noop_rate = load.median(noops)

    # Accept->sent: the API's peak for the same request (no worker running), then single
    # notifications paced at a fraction of the lower of that and the drain rate at the same
    # provider latency.
    r.flushdb()
    api = api_capacity(
        web.url,
        API_PATH,
        headers={"Authorization": f"Bearer {seed.api_key}"},
        body_fn=lambda i: single_body(seed, i),
    )
    r.flushdb()
    latency_figures: list[Figure] = []
    runs = [(NO_LATENCY, fast_rate)] + ([(cfg.slow, slow_rate)] if slow else [])
    for latency, rate in runs:
        paced_at = pace({"API peak": api.rps, "drain": rate}, cfg.pace_fraction)
        result, lat = accept_to_sent(
            web,
            seed,
            cfg,
            env,
            r,
            sim=sim,
            rate=paced_at.rate,
            seconds=cfg.latency_seconds,
            latency=latency,
        )
        latency_figures += accept_figures(latency, paced_at, result, lat)
    figures = [drain_figure(cfg, fast, noops, fast_rate, noop_rate, load_drains)]
    if slow:
        figures += slow_figures(cfg, fast_rate, slow, load_drains)
    figures += latency_figures + memory_figures(cfg, small, fast[0], slow)
    if cfg.analytics_overhead:
        from bench.analytics_fold import fold_comparison

        figures.append(
            fold_comparison(
                web, seed, cfg, env, r, backlog=cfg.backlog, repeats=cfg.repeats, sim=sim
            )
        )
    return figures


def drain_figure(
    cfg: PipelineConfig,
    fast: list[DrainResult],
    noops: list[float],
    fast_rate: float,
    noop_rate: float,
    load_drains: str,
) -> Figure:
    big = fast[0]  # statuses and the simulator's count: the first drain
    return Figure(
        "pipeline",
        f"deliveries/s ({cfg.backlog:,} email backlog, 0 ms)",
        fast_rate,
        "/s",
        ceiling=noop_rate,
        ceiling_name="no-op task",
        target=">= 50% of no-op",
        met=fast_rate >= 0.5 * noop_rate,
        load=load_drains,
        note=(
            f"{cfg.describe()} for both; median of {len(fast)} alternating drains, "
            f"deliveries runs {[round(b.rate) for b in fast]}, no-op runs "
            f"{[round(n) for n in noops]}; deliveries: rate between the 5th and 95th "
            "percentile of sent_at, up to SEND_BATCH_SIZE per message; no-op: between 95% "
            "and 5% of its queue left (one task per message); "
            f"{big.stats['by_status'].get('sent', 0):,}/{cfg.backlog:,} sent, statuses "
            f"{big.stats['by_status']}; simulator received {big.sim.get('received')} (accepted "
            f"{big.sim.get('accepted')}); first drain took {big.seconds:.1f}s"
        ),
    )


def slow_figures(
    cfg: PipelineConfig, fast_rate: float, slow: list[DrainResult], load_drains: str
) -> list[Figure]:
    slow_rate = load.median([d.rate for d in slow])
    limit = in_flight_limit()
    in_flight = per_process(slow, cfg.workers)
    latency = cfg.slow.describe()
    first = slow[0]
    return [
        Figure(
            "pipeline",
            f"deliveries/s at {latency} provider latency",
            slow_rate,
            "/s",
            ceiling=fast_rate,
            ceiling_name="at 0 ms",
            target=f">= {LATENCY_TARGET:.0%} of 0 ms",
            met=slow_rate >= LATENCY_TARGET * fast_rate,
            load=load_drains,
            note=(
                f"the SendGrid simulator's latency fault (ms={cfg.provider_ms:.0f}, "
                f"jitter_ms={cfg.provider_jitter_ms:.0f}, uniform) on every request; same "
                f"backlog and workers, alternating with the 0 ms drains; runs "
                f"{[round(d.rate) for d in slow]}; first drain {first.seconds:.1f}s, statuses "
                f"{first.stats['by_status']}, simulator accepted {first.sim.get('accepted')}"
            ),
        ),
        Figure(
            "pipeline",
            f"sends in flight per worker process at {latency}",
            load.median(in_flight),
            "",
            ceiling=float(limit),
            ceiling_name=IN_FLIGHT_SETTING,
            note=(
                f"the simulator's max_in_flight (most requests it served at once) over each "
                f"drain / {cfg.workers} worker processes: runs {in_flight}; "
                f"{IN_FLIGHT_SETTING}={limit}, shared by the process's -c {cfg.concurrency} "
                "batch threads"
            ),
        ),
    ]


def accept_figures(
    latency: Latency, paced_at: Pace, result: load.LoadResult, lat: list[float]
) -> list[Figure]:
    label = f"{latency.describe()}, {paced_at.rate:.0f}/s paced"
    return [
        Figure(
            "pipeline",
            f"accept->sent p50 ({label})",
            load.percentile(lat, 50),
            "ms",
            load=load_average(),
            note=(
                f"{len(lat)} single-recipient email notifications {paced_at.describe()}, "
                f"after {WARMUP_SECONDS:.0f} s of the same not measured (the workers' start-up); "
                f"API p99 {result.p99_ms:.1f} ms; statuses {result.statuses}"
            ),
        ),
        Figure("pipeline", f"accept->sent p99 ({label})", load.percentile(lat, 99), "ms"),
    ]


def memory_figures(
    cfg: PipelineConfig, small: DrainResult, big: DrainResult, slow: list[DrainResult]
) -> list[Figure]:
    ratio_workers = big.peaks.get("workers", 0) / max(1, small.peaks.get("workers", 1))
    ratio_web = big.peaks.get("web", 0) / max(1, small.peaks.get("web", 1))
    figures = [
        Figure(
            "memory",
            f"workers peak RSS, {cfg.backlog:,} vs {cfg.memory_small:,}",
            big.peaks.get("workers", 0) / MB,
            "MiB",
            ceiling=small.peaks.get("workers", 0) / MB,
            ceiling_name=f"at {cfg.memory_small:,}",
            target="flat (10x load < 1.25x)",
            met=ratio_workers < 1.25,
            note=(
                f"sum over {cfg.workers} worker process groups; largest single process "
                f"{big.peak_single.get('workers', 0) / MB:.0f} MiB at 10x, "
                f"{small.peak_single.get('workers', 0) / MB:.0f} MiB at 1x"
            ),
        ),
        Figure(
            "memory",
            "web peak RSS (queueing the backlog)",
            big.peaks.get("web", 0) / MB,
            "MiB",
            ceiling=small.peaks.get("web", 0) / MB,
            ceiling_name=f"at {cfg.memory_small:,}",
            target="flat (10x load < 1.25x)",
            met=ratio_web < 1.25,
            note=(
                "uvicorn master + workers; largest single process "
                f"{big.peak_single.get('web', 0) / MB:.0f} MiB"
            ),
        ),
    ]
    if slow:
        figures += slow_memory_figures(cfg, big, slow[0])
    return figures


def slow_memory_figures(cfg: PipelineConfig, big: DrainResult, first: DrainResult) -> list[Figure]:
    peak, end = first.peaks.get("workers", 0), first.end.get("workers", 0)
    latency = cfg.slow.describe()
    return [
        Figure(
            "memory",
            f"workers peak RSS at {latency}, {cfg.backlog:,}",
            peak / MB,
            "MiB",
            ceiling=big.peaks.get("workers", 0) / MB,
            ceiling_name="at 0 ms",
            target="flat (< 1.25x)",
            met=peak < 1.25 * big.peaks.get("workers", 1),
            note=(
                f"sum over {cfg.workers} worker process groups, sampled every 0.25 s over the "
                f"first drain at {latency}; largest single process "
                f"{first.peak_single.get('workers', 0) / MB:.0f} MiB"
            ),
        ),
        Figure(
            "memory",
            f"workers RSS at the end of the drain at {latency}",
            end / MB,
            "MiB",
            ceiling=peak / MB,
            ceiling_name="peak",
        ),
    ]
