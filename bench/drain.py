"""The pipeline benchmark's mechanics (bench/pipeline.py has the figures): queue a backlog of
email deliveries through the API with no worker running, start the workers and time the drain
to the SendGrid simulator (with or without provider latency); the no-op task on the same
workers; single notifications paced through a running pipeline for accept->sent."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from bench import load
from bench.ingestion import API_PATH, bulk_body, post
from bench.procs import Beat, RssSampler, Simulator, Web, Worker
from bench.seed import Seed

CHANNEL = "email"
WARMUP_SECONDS = 3.0  # accept->sent: paced this long first, and not measured


@dataclass
class WorkerConfig:
    workers: int = 2
    pool: str = "threads"
    concurrency: int = 8
    # With a webhook endpoint (bench/webhooks.py): a webhooks worker runs beside the channel's.
    webhooks: bool = False
    # The analytics fold (bench/analytics_fold.py): None, no beat nor maintenance worker (as
    # before); True or False, both run beside the workers with ANALYTICS_ENABLED so.
    fold: bool | None = None

    def describe(self) -> str:
        text = f"{self.workers} worker processes, -P {self.pool} -c {self.concurrency}"
        return text + (" + a webhooks worker (-c 16)" if self.webhooks else "")


@dataclass(frozen=True)
class Latency:
    """The simulator's latency fault: every request waits ms +/- a uniform jitter_ms."""

    ms: float = 0.0
    jitter_ms: float = 0.0

    def apply(self, sim: Simulator) -> None:
        if self.ms > 0:
            sim.fault(kind="latency", ms=self.ms, jitter_ms=self.jitter_ms)

    def describe(self) -> str:
        if self.ms <= 0:
            return "0 ms"
        return f"{self.ms:.0f} ms" + (f" +/- {self.jitter_ms:.0f}" if self.jitter_ms else "")


NO_LATENCY = Latency()


def queue_remaining(r: redis.Redis, channel: str) -> int:
    """Messages waiting in the channel's queues (every priority step) plus those unacked,
    except the webhooks worker's (`--webhook-receiver-sleep`: they are not the channel's, and a
    slow receiver keeps some unacked long after the sends are done)."""
    from apps.core import broker
    from notifier.queues import channel_queues

    waiting = sum(broker.queue_depths(channel_queues(channel), client=r).values())
    return waiting + broker.unacked_count(client=r) - unacked_webhooks(r)


def unacked_webhooks(r: redis.Redis) -> int:
    """Unacknowledged messages of the webhooks queue (kombu keeps [message, exchange, routing
    key] per delivery tag in the `unacked` hash)."""
    from notifier.queues import WEBHOOKS_QUEUE

    count = 0
    for value in r.hvals("unacked"):
        try:
            routing_key = json.loads(value)[2]
        except (ValueError, IndexError, TypeError):
            continue
        count += routing_key == WEBHOOKS_QUEUE
    return count


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


def start_workers(env: dict[str, str], cfg: WorkerConfig, tag: str) -> list[Worker | Beat]:
    from notifier.queues import MAINTENANCE_QUEUE, WEBHOOKS_QUEUE, channel_queues

    workers = [
        Worker(
            env,
            queues=channel_queues(CHANNEL),
            pool=cfg.pool,
            concurrency=cfg.concurrency,
            name=f"{tag}-{i}",
        )
        for i in range(cfg.workers)
    ]
    if cfg.webhooks:  # as the Procfile's worker_webhooks
        workers.append(
            Worker(env, queues=[WEBHOOKS_QUEUE], pool="threads", concurrency=16, name=f"{tag}-wh")
        )
    if cfg.fold is not None:  # as the Procfile's worker_maintenance and beat
        fold_env = {**env, "ANALYTICS_ENABLED": "true" if cfg.fold else "false"}
        return [
            *workers,
            Worker(
                fold_env, queues=[MAINTENANCE_QUEUE], pool="solo", concurrency=1, name=f"{tag}-mt"
            ),
            Beat(fold_env),
        ]
    return workers


def queue_backlog(web: Web, seed: Seed, count: int) -> list[str]:
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


@dataclass
class DrainResult:
    rate: float
    seconds: float
    stats: dict[str, Any]
    latency: Latency = NO_LATENCY
    sim: dict[str, Any] = field(default_factory=dict)  # the simulator's /_sim/stats after it
    peaks: dict[str, int] = field(default_factory=dict)
    peak_single: dict[str, int] = field(default_factory=dict)
    end: dict[str, int] = field(default_factory=dict)  # RSS at the end of the drain

    @property
    def max_in_flight(self) -> int:
        """Most provider requests the simulator served at once during the drain."""
        return int(self.sim.get("max_in_flight", 0))


def drain_deliveries(
    web: Web,
    seed: Seed,
    cfg: WorkerConfig,
    env: dict[str, str],
    r: redis.Redis,
    count: int,
    *,
    sim: Simulator,
    latency: Latency = NO_LATENCY,
) -> DrainResult:
    """Queue `count` deliveries with no worker running, then start the workers and time them,
    the simulator answering after `latency`."""
    r.flushdb()
    sim.reset()  # forgets requests, faults and the in-flight maximum
    latency.apply(sim)
    # Sequential sends at the latency would take count * latency / threads: allow for that.
    timeout = max(300.0, count / 20, 2 * count * (latency.ms / 1000) / max(1, cfg.concurrency))
    with RssSampler() as sampler:
        sampler.watch("web", web)
        ids = queue_backlog(web, seed, count)
        workers = start_workers(env, cfg, "pipeline")
        for w in workers:
            sampler.watch("workers", w)
        try:
            _, seconds = drain_rate(r, CHANNEL, count, timeout=timeout)
            stats = wait_sent(ids, count, timeout=120)
            sampler.sample()  # the workers' RSS at the end, before the first one stops
            end = dict(sampler.last)
        finally:
            for w in workers:
                w.stop()
    found = sim.stats()
    sim.clear_faults()
    return DrainResult(
        sent_rate(ids),
        seconds,
        stats,
        latency,
        found,
        dict(sampler.peaks),
        dict(sampler.peak_single),
        end,
    )


def drain_noop(cfg: WorkerConfig, env: dict[str, str], r: redis.Redis, count: int) -> float:
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


def single_body(seed: Seed, index: int) -> bytes:
    """One single-recipient email notification (the accept->sent figure's request)."""
    return json.dumps(
        {
            "recipient": seed.recipients[index % len(seed.recipients)],
            "template": seed.template,
            "variables": {"order_id": f"L-{index}"},
            "channels": [CHANNEL],
        }
    ).encode()


def accept_to_sent(
    web: Web,
    seed: Seed,
    cfg: WorkerConfig,
    env: dict[str, str],
    r: redis.Redis,
    *,
    sim: Simulator,
    rate: float,
    seconds: float,
    latency: Latency = NO_LATENCY,
) -> tuple[load.LoadResult, list[float]]:
    """Workers running, single notifications paced at `rate`: `sent_at - created_at` of each,
    after a warm-up that is not measured."""
    r.flushdb()
    sim.reset()
    latency.apply(sim)
    workers = start_workers(env, cfg, "latency")

    def run(run_seconds: float) -> tuple[load.LoadResult, list[str]]:
        result, bodies = load.paced(
            web.url,
            API_PATH,
            headers={"Authorization": f"Bearer {seed.api_key}"},
            body_fn=lambda i: single_body(seed, i),
            rate=rate,
            seconds=run_seconds,
        )
        ids = [json.loads(b)["id"] for b in bodies if b.startswith(b"{") and b'"id"' in b]
        wait_sent(ids, len(ids), timeout=120)
        return result, ids

    try:
        # The workers' start-up (Django, broker and database connections) takes seconds on a
        # busy machine; what arrives meanwhile waits in the queue. Not the steady state.
        run(WARMUP_SECONDS)
        result, ids = run(seconds)
        lat = latencies_ms(ids)
    finally:
        for w in workers:
            w.stop()
        sim.clear_faults()
    return result, lat
