"""Scrape-time metrics: what Redis holds now (queue depths, breaker states), read when
Prometheus scrapes the web's `/metrics`, never cached."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from django.conf import settings
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config.queues import ALL_QUEUES

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps each queue as one list per priority step
# (`<queue>`, `<queue>\x06\x163`, ...): the depth of a queue is their sum.
_KOMBU_SEP = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
SCRAPE_TIMEOUT_SECONDS = 2


def _broker() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_timeout=SCRAPE_TIMEOUT_SECONDS,
        socket_connect_timeout=SCRAPE_TIMEOUT_SECONDS,
    )


def queue_depths(queues: list[str] | None = None) -> dict[str, int]:
    """Messages waiting in each Celery queue on the broker, now (one pipelined round trip)."""
    names = list(queues or ALL_QUEUES)
    client = _broker()
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in names:
                for step in _KOMBU_PRIORITY_STEPS:
                    pipe.llen(queue if step == 0 else f"{queue}{_KOMBU_SEP}{step}")
            sizes = pipe.execute()
    finally:
        client.close()
    steps = len(_KOMBU_PRIORITY_STEPS)
    return {q: int(sum(sizes[i * steps : (i + 1) * steps])) for i, q in enumerate(names)}


class QueueDepthCollector(Collector):
    """`notifier_queue_depth{queue}`, read from the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "notifier_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        up = GaugeMetricFamily(
            "notifier_queue_depth_up", "1 if the broker answered the queue-depth scrape."
        )
        try:
            depths = queue_depths()
        except redis.RedisError as exc:
            logger.warning("queue depth scrape failed", extra={"error": str(exc)})
            up.add_metric([], 0)
        else:
            for queue, depth in depths.items():
                family.add_metric([queue], depth)
            up.add_metric([], 1)
        yield family
        yield up


# Breaker states as numbers, for alerting (`== 2` is open).
BREAKER_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


def breaker_rows() -> list[dict[str, object]]:
    """Each configured provider's circuit breaker as Redis holds it now."""
    from apps.deliveries.guards import guard_redis, provider_breaker
    from apps.deliveries.providers import provider_failovers, provider_for
    from notifier.types import Channel

    names: list[str] = []
    for channel in Channel:
        for provider in (provider_for(channel), *provider_failovers(channel)):
            if provider.name not in names:
                names.append(provider.name)
    # And every breaker some worker has recorded state for (workers may configure more).
    prefix = provider_breaker(names[0]).key.rsplit(":", 1)[0] + ":"
    for key in guard_redis().scan_iter(match=f"{prefix}*", count=100):
        name = (key.decode() if isinstance(key, bytes) else str(key))[len(prefix) :]
        if name not in names:
            names.append(name)
    rows: list[dict[str, object]] = []
    for name in names:
        breaker = provider_breaker(name)
        failures, opened = breaker._redis.hmget(breaker.key, "failures", "opened_count")
        rows.append(
            {
                "provider": name,
                "state": breaker.state(),
                "failures": int(failures or 0),
                "opened_count": int(opened or 0),
            }
        )
    return rows


class BreakerStateCollector(Collector):
    """`notifier_circuit_breaker_state{provider}` (0 closed, 1 half-open, 2 open), read from
    Redis at scrape time, with the consecutive failures counted so far."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "notifier_circuit_breaker_state",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
            labels=["provider"],
        )
        failures = GaugeMetricFamily(
            "notifier_circuit_breaker_failures",
            "Consecutive transient failures counted by the provider's breaker.",
            labels=["provider"],
        )
        try:
            rows = breaker_rows()
        except redis.RedisError as exc:
            logger.warning("breaker scrape failed", extra={"error": str(exc)})
            rows = []
        for row in rows:
            state.add_metric([str(row["provider"])], BREAKER_STATE_VALUES[str(row["state"])])
            failures.add_metric([str(row["provider"])], float(row["failures"]))  # type: ignore[arg-type]
        yield state
        yield failures
