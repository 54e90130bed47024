"""(3) Pipeline and (5) memory: a backlog of email deliveries drained by real workers to the
SendGrid simulator, beside a no-op task drained by the same worker configuration."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from bench import load
from bench.env import load_average, process_env
from bench.ingestion import API_PATH, bulk_body, post
from bench.procs import Simulator, Web, Worker
from bench.report import Figure
from bench.seed import Seed

CHANNEL = "email"
# Single-recipient notifications per second for the accept->sent latency: half the drain rate
# or this, whichever is lower (about half the ingestion peak of two web processes here).
LATENCY_RATE_CAP = 50.0


@dataclass
class PipelineConfig:
    backlog: int = 20_000
    workers: int = 2
    pool: str = "threads"
    concurrency: int = 8
    latency_seconds: int = 15
    memory_small: int = 2_000
    repeats: int = 3

    def describe(self) -> str:
        return f"{self.workers} worker processes, -P {self.pool} -c {self.concurrency}"


class RssSampler:
    """Peak RSS of each process group (web, workers) sampled every 0.25 s in a thread."""

    def __init__(self) -> None:
        self.groups: dict[str, list[Any]] = {}
        self.peaks: dict[str, int] = {}
        self.peak_single: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, label: str, proc: Any) -> None:
        self.groups.setdefault(label, []).append(proc)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for label, procs in list(self.groups.items()):
                sizes = [s for p in list(procs) if p.alive() for s in p.rss().values()]
                self.peaks[label] = max(self.peaks.get(label, 0), sum(sizes))
                if sizes:
                    self.peak_single[label] = max(self.peak_single.get(label, 0), max(sizes))
            self._stop.wait(0.25)


def queue_remaining(r: redis.Redis, channel: str) -> int:
    """Messages waiting in the channel's queues (every priority step) plus those unacked."""
    from apps.core import broker
    from notifier.queues import channel_queues

    return sum(broker.queue_depths(channel_queues(channel), client=r).values()) + (
        broker.unacked_count(client=r)
    )


def drain_rate(r: redis.Redis, channel: str, total: int, timeout: float) -> tuple[float, float]:
    """Watch the queue empty: rate between 95% and 5% remaining, and time to empty."""
    start = time.monotonic()
    t_hi = t_lo = None
    deadline = start + timeout
    while time.monotonic() < deadline:
        remaining = queue_remaining(r, channel)
        now = time.monotonic()
        if t_hi is None and remaining <= 0.95 * total:
            t_hi = now
        if t_lo is None and remaining <= 0.05 * total:
            t_lo = now
        if remaining == 0:
            break
        time.sleep(0.1)
    else:
        raise TimeoutError(f"{channel} queues not drained after {timeout}s")
    if t_hi is None or t_lo is None or t_lo <= t_hi:
        return float("nan"), time.monotonic() - start
    return 0.9 * total / (t_lo - t_hi), time.monotonic() - start


def start_workers(env: dict[str, str], cfg: PipelineConfig, tag: str) -> list[Worker]:
    from notifier.queues import channel_queues

    return [
        Worker(
            env,
            queues=channel_queues(CHANNEL),
            pool=cfg.pool,
            concurrency=cfg.concurrency,
            name=f"{tag}-{i}",
        )
        for i in range(cfg.workers)
    ]


def queue_backlog(web: Web, seed: Seed, count: int, tag: str) -> list[str]:
    """`count` email deliveries through the API, 1000 recipients per request."""
    ids = []
    for i in range(0, count, 1000):
        chunk = seed.recipients[: min(1000, count - i)]
        status, payload, _ = post(
            web.url + API_PATH, bulk_body(seed, chunk, i, [CHANNEL]), seed.api_key
        )
        if status != 202:
            raise RuntimeError(f"queueing answered {status}: {payload[:300]!r}")
        ids.append(json.loads(payload)["id"])
    return ids


def sent_stats(notification_ids: list[str]) -> dict[str, Any]:
    from django.db.models import Count

    from apps.deliveries.models import Delivery

    rows = Delivery.objects.filter(notification_id__in=notification_ids)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {"by_status": by_status, "total": sum(by_status.values())}


def wait_sent(notification_ids: list[str], total: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = sent_stats(notification_ids)
        if stats["by_status"].get("sent", 0) >= total or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


def latencies_ms(notification_ids: list[str]) -> list[float]:
    from apps.deliveries.models import Delivery

    pairs = Delivery.objects.filter(
        notification_id__in=notification_ids, sent_at__isnull=False
    ).values_list("created_at", "sent_at")
    return [(sent - created).total_seconds() * 1000 for created, sent in pairs]


@dataclass
class DrainResult:
    rate: float
    seconds: float
    stats: dict[str, Any]
    peaks: dict[str, int] = field(default_factory=dict)
    peak_single: dict[str, int] = field(default_factory=dict)


def drain_deliveries(
    web: Web, seed: Seed, cfg: PipelineConfig, env: dict[str, str], r: redis.Redis, count: int
) -> DrainResult:
    """Queue `count` deliveries with no worker running, then start the workers and time them."""
    r.flushdb()
    with RssSampler() as sampler:
        sampler.watch("web", web)
        ids = queue_backlog(web, seed, count, "drain")
        workers = start_workers(env, cfg, "pipeline")
        for w in workers:
            sampler.watch("workers", w)
        try:
            _, seconds = drain_rate(r, CHANNEL, count, timeout=max(300, count / 20))
            stats = wait_sent(ids, count, timeout=120)
        finally:
            for w in workers:
                w.stop()
    rate = sent_rate(ids)
    return DrainResult(rate, seconds, stats, dict(sampler.peaks), dict(sampler.peak_single))


def sent_rate(notification_ids: list[str]) -> float:
    """Deliveries sent per second between the 5th and the 95th percentile of their sent_at
    (a queue message carries a batch of deliveries, so the queue length cannot tell)."""
    from apps.deliveries.models import Delivery

    times = sorted(
        t.timestamp()
        for t in Delivery.objects.filter(
            notification_id__in=notification_ids, sent_at__isnull=False
        ).values_list("sent_at", flat=True)
    )
    if len(times) < 20:
        return float("nan")
    lo, hi = times[int(0.05 * len(times))], times[int(0.95 * len(times))]
    return 0.9 * len(times) / (hi - lo) if hi > lo else float("nan")


def drain_noop(cfg: PipelineConfig, env: dict[str, str], r: redis.Redis, count: int) -> float:
    from apps.benchmarks.tasks import NOOP_TASK
    from config.celery import app
    from notifier.queues import queue_name

    r.flushdb()
    with app.producer_or_acquire() as producer, producer.batch():
        for i in range(count):
            app.send_task(
                NOOP_TASK, args=[str(i)], queue=queue_name(CHANNEL, "normal"), producer=producer
            )
    workers = start_workers(env, cfg, "noop")
    try:
        rate, _ = drain_rate(r, CHANNEL, count, timeout=max(300, count / 50))
    finally:
        for w in workers:
            w.stop()
    return rate


def run_pipeline(web: Web, seed: Seed, cfg: PipelineConfig, sim: Simulator) -> list[Figure]:
    env = process_env(SENDGRID_API_URL=sim.url, SENDGRID_API_KEY="SG.bench")
    from apps.core.broker import redis_client

    r = redis_client(env["REDIS_URL"])
    sim.reset()
    small = drain_deliveries(web, seed, cfg, env, r, cfg.memory_small)
    # The backlog and the no-op ceiling alternately, `repeats` times: medians (a drain takes
    # 20 s or so, and this machine's other work comes and goes).
    bigs: list[DrainResult] = []
    noops: list[float] = []
    received: dict[str, Any] = {}
    for _ in range(max(1, cfg.repeats)):
        sim.reset()
        bigs.append(drain_deliveries(web, seed, cfg, env, r, cfg.backlog))
        if len(bigs) == 1:
            received = sim.stats()  # the simulator's count for the first drain
        noops.append(drain_noop(cfg, env, r, cfg.backlog))
    load_big = load_noop = load_average()
    big = bigs[0]  # memory peaks and statuses: the first drain
    big_rate = load.median([b.rate for b in bigs])
    noop_rate = load.median(noops)
    # Latency: workers running, single notifications paced at half the measured drain rate.
    r.flushdb()
    workers = start_workers(env, cfg, "latency")
    try:
        # Half the drain rate, but within what the API takes comfortably (its half peak).
        rate = min(LATENCY_RATE_CAP, max(5.0, (big_rate if big_rate == big_rate else 100.0) / 2))
        result, bodies = load.paced(
            web.url,
            API_PATH,
            headers={"Authorization": f"Bearer {seed.api_key}"},
            body_fn=lambda i: json.dumps(
                {
                    "recipient": seed.recipients[i % len(seed.recipients)],
                    "template": seed.template,
                    "variables": {"order_id": f"L-{i}"},
                    "channels": [CHANNEL],
                }
            ).encode(),
            rate=rate,
            seconds=cfg.latency_seconds,
        )
        ids = [json.loads(b)["id"] for b in bodies if b.startswith(b"{") and b'"id"' in b]
        wait_sent(ids, len(ids), timeout=120)
        lat = latencies_ms(ids)
    finally:
        for w in workers:
            w.stop()
    sent = big.stats["by_status"].get("sent", 0)
    mb = 1024 * 1024
    ratio_workers = big.peaks.get("workers", 0) / max(1, small.peaks.get("workers", 1))
    ratio_web = big.peaks.get("web", 0) / max(1, small.peaks.get("web", 1))
    return [
        Figure(
            "pipeline",
            f"deliveries/s ({cfg.backlog:,} email backlog)",
            big_rate,
            "/s",
            ceiling=noop_rate,
            ceiling_name="no-op task",
            target=">= 50% of no-op",
            met=big_rate >= 0.5 * noop_rate,
            load=load_big,
            note=(
                f"{cfg.describe()} for both; median of {len(bigs)} alternating drains, "
                f"deliveries runs {[round(b.rate) for b in bigs]}, no-op runs "
                f"{[round(n) for n in noops]}; deliveries: rate between the 5th and 95th "
                "percentile of sent_at, up to SEND_BATCH_SIZE per message; no-op: between 95% "
                "and 5% of its queue left (one task per message); "
                f"{sent:,}/{cfg.backlog:,} sent, statuses {big.stats['by_status']}; simulator "
                f"received {received.get('received')} (accepted {received.get('accepted')}); "
                f"first drain took {big.seconds:.1f}s; load after the drains {load_noop}"
            ),
        ),
        Figure(
            "pipeline",
            f"accept->sent p50 ({rate:.0f}/s paced)",
            load.percentile(lat, 50),
            "ms",
            load=load_average(),
            note=(
                f"{len(lat)} single-recipient email notifications at half the drain rate "
                f"(at most {LATENCY_RATE_CAP:.0f}/s); "
                f"API p99 {result.p99_ms:.1f} ms; statuses {result.statuses}"
            ),
        ),
        Figure("pipeline", "accept->sent p99", load.percentile(lat, 99), "ms"),
        Figure(
            "memory",
            f"workers peak RSS, {cfg.backlog:,} vs {cfg.memory_small:,}",
            big.peaks.get("workers", 0) / mb,
            "MiB",
            ceiling=small.peaks.get("workers", 0) / mb,
            ceiling_name=f"at {cfg.memory_small:,}",
            target="flat (10x load < 1.25x)",
            met=ratio_workers < 1.25,
            note=(
                f"sum over {cfg.workers} worker process groups; largest single process "
                f"{big.peak_single.get('workers', 0) / mb:.0f} MiB at 10x, "
                f"{small.peak_single.get('workers', 0) / mb:.0f} MiB at 1x"
            ),
        ),
        Figure(
            "memory",
            "web peak RSS (queueing the backlog)",
            big.peaks.get("web", 0) / mb,
            "MiB",
            ceiling=small.peaks.get("web", 0) / mb,
            ceiling_name=f"at {cfg.memory_small:,}",
            target="flat (10x load < 1.25x)",
            met=ratio_web < 1.25,
            note=(
                "uvicorn master + workers; largest single process "
                f"{big.peak_single.get('web', 0) / mb:.0f} MiB"
            ),
        ),
    ]
