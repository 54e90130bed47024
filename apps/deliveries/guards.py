"""Provider protection around one send: token bucket, circuit breaker, failover.

Checked BEFORE a delivery is claimed: a delivery that has to wait for a token or for an open
breaker is not attempted (its attempt counter and Attempt rows do not move); it is published
again with a countdown. State lives in Redis (notifier.ratelimit / notifier.breaker), so every
worker process sees the same buckets and breakers.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django.utils import timezone

from apps.core import metrics
from apps.core.broker import service_client
from apps.deliveries.lifecycle import deliveries_postpone
from apps.deliveries.models import CLAIM_EARLY_SECONDS, CLAIMABLE, Delivery, DeliveryStatus
from apps.deliveries.providers import provider_failovers, provider_for
from apps.deliveries.queueing import publish_sends_after_commit
from notifier.breaker import CircuitBreaker
from notifier.errors import DeliveryFailure, TransientFailure
from notifier.providers.base import Provider
from notifier.ratelimit import TokenBucket

logger = logging.getLogger(__name__)


def guard_redis() -> redis.Redis:
    """The service's Redis, from the broker adapter (one client and pool per process)."""
    return service_client()


@cache
def provider_bucket(name: str) -> TokenBucket:
    return TokenBucket(
        guard_redis(),
        name,
        rate=float(settings.PROVIDER_RATE_PER_SECOND.get(name, 0)),
        burst=int(settings.PROVIDER_BURST.get(name, 1)),
    )


@cache
def provider_breaker(name: str) -> CircuitBreaker:
    return CircuitBreaker(
        guard_redis(),
        name,
        failure_threshold=settings.BREAKER_FAILURE_THRESHOLD,
        open_seconds=settings.BREAKER_OPEN_SECONDS,
        probe_timeout_seconds=settings.BREAKER_PROBE_TIMEOUT_SECONDS,
    )


@dataclass
class Gate:
    """The provider to send through and how many sends it allows now (`granted`: tokens taken,
    one only for a half-open probe), or None: wait `wait` seconds."""

    provider: Provider | None
    wait: float = 0.0
    probe: bool = False
    reason: str = ""
    granted: int = 0

    def record(self, failure: DeliveryFailure | None) -> bool:
        """Tell the provider's breaker how the call went. True if this failure opened it."""
        if self.provider is None:
            return False
        breaker = provider_breaker(self.provider.name)
        try:
            if isinstance(failure, TransientFailure):
                if breaker.record_failure():
                    logger.warning("breaker opened", extra={"provider": self.provider.name})
                    return True
            else:  # sent, or a permanent answer: either way the provider is up
                breaker.record_success()
        except redis.RedisError as exc:  # the send happened: its outcome matters more
            logger.warning("breaker not updated: %s", exc, extra={"provider": self.provider.name})
        return False

    def release(self) -> None:
        """Nothing was sent after all (not claimed, deferred, skipped)."""
        if self.provider is not None and self.probe:
            provider_breaker(self.provider.name).release_probe()


# How long the rest of a batch waits while one delivery probes a half-open breaker.
PROBE_WAIT_SECONDS = 1.0


def gate_open(*, channel: str, wanted: int = 1) -> Gate:
    """Pick the provider for up to `wanted` sends: the primary unless its breaker is open, then
    failovers. A half-open breaker lets one send through (the probe).

    A throttled provider (no token) means waiting, not failing over: the bucket protects that
    provider's rate, it says nothing about its health.
    """
    waits: list[float] = []
    reasons: list[str] = []
    for provider in (provider_for(channel), *provider_failovers(channel)):
        permit = provider_breaker(provider.name).allow()
        if not permit.allowed:
            waits.append(permit.wait)
            reasons.append(f"{provider.name} breaker open")
            metrics.breaker_rejected(provider=provider.name)
            continue
        bucket = provider_bucket(provider.name)
        token = bucket.acquire(1 if permit.probe else wanted)
        if not token.allowed:
            if permit.probe:
                provider_breaker(provider.name).release_probe()
            waits.append(token.wait)
            reasons.append(f"{provider.name} rate limit")
            metrics.rate_limit_waited(provider=provider.name)
            break
        # The deliveries beyond the grant wait: for the probe's verdict, or for their tokens.
        rest = wanted - token.granted
        if permit.probe:
            rest_wait = PROBE_WAIT_SECONDS
        else:
            rest_wait = rest / bucket.rate if rest > 0 and bucket.rate > 0 else 0.0
        return Gate(provider=provider, probe=permit.probe, granted=token.granted, wait=rest_wait)
    return Gate(provider=None, wait=min(waits), reason="; ".join(reasons))


def deliveries_peek(*, delivery_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(channel, priority) of each delivery that can still be claimed, by id."""
    early = timezone.now() + dt.timedelta(seconds=CLAIM_EARLY_SECONDS)
    rows = (
        Delivery.objects.filter(id__in=delivery_ids, status__in=CLAIMABLE)
        # As the claim (lifecycle/table.py CLAIM): a duplicate message for a retrying row
        # takes no token of the gate before the row's backoff is over.
        .exclude(status=DeliveryStatus.RETRYING, next_attempt_at__gt=early)
        .values_list("id", "channel", "priority")
    )
    return {str(pk): (str(channel), str(priority)) for pk, channel, priority in rows}


def deliveries_wait(
    *, delivery_ids: Sequence[str], channel: str, priority: str, wait: float
) -> float:
    """Publish the deliveries again after `wait` (plus spread). Not an attempt: the rows keep
    their status and counter; `next_attempt_at` says when, and keeps the reconciler off them."""
    # Capped like a retry: a countdown past the broker's visibility timeout is redelivered
    # over and over; coming back early only means asking the bucket or breaker again.
    delay = min(wait, float(settings.RETRY_CAP_SECONDS)) + random.uniform(  # noqa: S311
        0, settings.PROVIDER_WAIT_JITTER_SECONDS
    )
    deliveries_postpone(
        delivery_ids=delivery_ids, until=timezone.now() + dt.timedelta(seconds=delay)
    )
    publish_sends_after_commit([(pk, channel, priority) for pk in delivery_ids], countdown=delay)
    return delay
