"""Waiting on a rate limit or an open breaker is not an attempt (in-process, real Redis)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.utils import timezone

from apps.deliveries.backpressure import queue_depth, queue_depth_forget
from apps.deliveries.guards import provider_breaker, provider_bucket
from apps.deliveries.models import Attempt, Delivery, DeliveryStatus
from apps.deliveries.providers import provider_for
from apps.deliveries.sending import deliveries_attempt
from tests.factories import DeliveryFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def guards(settings: Any, clean_redis: redis.Redis) -> Iterator[str]:
    """The in-process email provider (console, no SendGrid configured here), fresh guards."""
    settings.BREAKER_FAILURE_THRESHOLD = 2
    settings.BREAKER_OPEN_SECONDS = 30
    settings.PROVIDER_RATE_PER_SECOND = {"console-email": 0.01}
    settings.PROVIDER_BURST = {"console-email": 1}
    provider_breaker.cache_clear()
    provider_bucket.cache_clear()
    name = provider_for("email").name
    assert name == "console-email"
    yield name
    provider_breaker.cache_clear()
    provider_bucket.cache_clear()


def assert_waited(delivery: Delivery, outcome: Any, *, at_least: float) -> None:
    delivery.refresh_from_db()
    assert outcome.result == "waiting"
    assert outcome.retry_in >= at_least
    assert delivery.status == DeliveryStatus.QUEUED
    assert delivery.attempts == 0
    assert not Attempt.objects.filter(delivery=delivery).exists()
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > timezone.now() + dt.timedelta(seconds=at_least - 1)
    queue_depth_forget()
    assert queue_depth() == 1  # published again, with a countdown


def test_an_open_breaker_means_waiting_not_an_attempt(guards: str) -> None:
    breaker = provider_breaker(guards)
    breaker.record_failure()
    breaker.record_failure()
    delivery = DeliveryFactory(status=DeliveryStatus.QUEUED)

    outcome = deliveries_attempt(delivery_ids=[str(delivery.id)])[str(delivery.id)]

    assert_waited(delivery, outcome, at_least=25)


def test_an_empty_bucket_means_waiting_not_an_attempt(guards: str) -> None:
    first = DeliveryFactory(status=DeliveryStatus.QUEUED)
    second = DeliveryFactory(status=DeliveryStatus.QUEUED)

    assert deliveries_attempt(delivery_ids=[str(first.id)])[str(first.id)].result == "sent"
    outcome = deliveries_attempt(delivery_ids=[str(second.id)])[str(second.id)]

    assert_waited(second, outcome, at_least=50)  # 0.01 tokens/s: the next one is ~100 s away


def test_a_half_open_probe_that_is_not_used_is_given_back(
    guards: str, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    # Given a half-open breaker (open period over) and a delivery that is already finished
    breaker = provider_breaker(guards)
    breaker.record_failure()
    breaker.record_failure()
    breaker._redis.hset(breaker.key, "opened_until", 0)
    done = DeliveryFactory(status=DeliveryStatus.SENT)
    queued = DeliveryFactory(status=DeliveryStatus.QUEUED)

    # When the finished one is offered, nothing is sent and the probe slot stays free
    assert deliveries_attempt(delivery_ids=[str(done.id)])[str(done.id)].result == "not_claimed"
    assert deliveries_attempt(delivery_ids=[str(queued.id)])[str(queued.id)].result == "sent"

    # Then the probe that sent closed the breaker
    assert breaker.state() == "closed"
