"""Scrape-time metrics: what Redis holds now (queue depths, breaker states), read when
Prometheus scrapes the web's `/metrics`, never cached."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from apps.core.broker import queue_depths

logger = logging.getLogger(__name__)


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
