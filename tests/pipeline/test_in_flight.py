"""Sends in flight together: a worker's provider calls overlap up to the provider's in-flight
limit (the simulator counts the most it served at once), never past it; a breaker that opens
mid-batch stops the calls not yet started; the provider's threads never touch the database;
and a worker's memory stays flat when the backlog grows tenfold under provider latency."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connections

from apps.deliveries import inflight
from apps.deliveries.guards import provider_breaker, provider_bucket
from apps.deliveries.models import Attempt, Delivery, DeliveryStatus
from apps.deliveries.providers import provider_failovers, provider_for
from apps.deliveries.queueing import publish_sends
from apps.deliveries.sending import deliveries_attempt
from apps.recipients.models import Recipient
from apps.templates.models import Template
from notifier.queues import channel_queues
from notifier.types import Channel
from tests.factories import DeliveryFactory, NotificationFactory, TemplateFactory
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]


def emails(client: Any, template: Template, count: int, start: int = 0) -> list[str]:
    """`count` queued email deliveries of one notification, published to the email queues."""
    recipients = Recipient.objects.bulk_create(
        Recipient(client=client, external_id=f"r-{n}", email=f"r-{n}@example.com")
        for n in range(start, start + count)
    )
    notification = NotificationFactory(client=client, template=template)
    deliveries = [
        DeliveryFactory(notification=notification, recipient=r, channel="email") for r in recipients
    ]
    publish_sends([(str(d.id), "email", d.priority) for d in deliveries])
    return [str(d.id) for d in deliveries]


def sent_count(ids: list[str]) -> int:
    return Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENT).count()


def test_a_worker_keeps_at_most_the_providers_limit_in_flight(
    worker_factory: Callable[..., Worker], sendgrid: Simulator, demo: dict[str, Any]
) -> None:
    # Given SendGrid answering in 300 ms, and one email worker (2 threads) allowed 6 calls in
    # flight to it
    sendgrid.fault(kind="latency", ms=300, jitter_ms=50)
    worker_factory(
        queues=channel_queues(Channel.EMAIL),
        concurrency=2,
        name="email",
        env={"SENDGRID_MAX_IN_FLIGHT": "6", "SENDGRID_RATE_PER_SECOND": "0"},
    )

    # When 60 emails are queued
    ids = emails(demo["client"], demo["template"], 60)

    # Then all are sent, with 6 calls in flight at once at the most (the batches of both
    # threads share the limit) and more than one (they overlap)
    wait_until(lambda: sent_count(ids) == 60, timeout=60)
    stats = sendgrid.stats()
    assert stats["accepted"] == 60
    assert 2 <= stats["max_in_flight"] <= 6
    assert Attempt.objects.filter(delivery_id__in=ids).count() == 60


@pytest.fixture
def real_sendgrid(
    settings: Any, sendgrid: Simulator, clean_redis: redis.Redis
) -> Iterator[Simulator]:
    """The in-process email provider pointed at the SendGrid simulator, fresh guards and pool."""
    settings.SENDGRID_API_URL = sendgrid.url
    settings.SENDGRID_API_KEY = "SG.test"
    settings.PROVIDER_RATE_PER_SECOND = {}
    settings.PROVIDER_MAX_IN_FLIGHT = {"sendgrid": 3}
    caches = (provider_for, provider_failovers, provider_breaker, provider_bucket)
    for cached in caches:
        cached.cache_clear()
    inflight.provider_pools_clear()
    assert provider_for("email").name == "sendgrid"
    yield sendgrid
    for cached in caches:
        cached.cache_clear()
    inflight.provider_pools_clear()


@pytest.mark.django_db(transaction=True)
def test_a_breaker_opening_mid_batch_stops_the_calls_not_yet_started(
    settings: Any, real_sendgrid: Simulator
) -> None:
    # Given SendGrid failing everything slowly, a breaker that opens at the second failure,
    # and 3 calls allowed in flight
    settings.BREAKER_FAILURE_THRESHOLD = 2
    real_sendgrid.fault(kind="latency", ms=200)
    real_sendgrid.fault(kind="status", status=503)
    notification = NotificationFactory(template=TemplateFactory())
    deliveries = [DeliveryFactory(notification=notification, channel="email") for _ in range(30)]

    # When one batch of 30 is attempted
    outcomes = deliveries_attempt(delivery_ids=[str(d.id) for d in deliveries])

    # Then SendGrid got the calls up to the opening failure and those already in flight beside
    # it, at most 2 + 3 - 1, and every other delivery went back to the queue unattempted
    received = real_sendgrid.stats()["received"]
    assert 2 <= received <= 4
    results = [o.result for o in outcomes.values()]
    assert results.count("retrying") == received
    assert results.count("waiting") == 30 - received
    rows = Delivery.objects.filter(id__in=[d.id for d in deliveries])
    assert rows.filter(status=DeliveryStatus.QUEUED, attempts=0).count() == 30 - received
    assert Attempt.objects.filter(delivery__in=deliveries).count() == received


@pytest.mark.django_db(transaction=True)
def test_a_call_that_succeeds_after_the_breaker_opened_does_not_close_it(
    settings: Any, real_sendgrid: Simulator
) -> None:
    # Given a breaker that opens at the second failure, two fast 503s and one slow success,
    # all three in flight together
    settings.BREAKER_FAILURE_THRESHOLD = 2
    notification = NotificationFactory(template=TemplateFactory())
    first, second, slow = (
        DeliveryFactory(notification=notification, channel="email") for _ in range(3)
    )
    real_sendgrid.fault(kind="status", status=503, match=str(first.id))
    real_sendgrid.fault(kind="status", status=503, match=str(second.id))
    real_sendgrid.fault(kind="latency", ms=800, match=str(slow.id))

    # When the batch is attempted
    outcomes = deliveries_attempt(delivery_ids=[str(d.id) for d in (first, second, slow)])

    # Then the late success is recorded, and the breaker the failures opened stays open
    assert [o.result for o in outcomes.values()] == ["retrying", "retrying", "sent"]
    assert provider_breaker("sendgrid").state() == "open"


@pytest.mark.django_db(transaction=True)
def test_the_providers_threads_never_touch_the_database(
    monkeypatch: pytest.MonkeyPatch, real_sendgrid: Simulator
) -> None:
    # Given the real SendGrid provider, watched: which thread calls it, and whether that
    # thread has a database connection open
    provider = provider_for("email")
    send = provider.send
    seen: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def watched(message: Any) -> Any:
        result = send(message)
        with lock:
            seen.append((threading.current_thread().name, connections["default"].connection))
        return result

    monkeypatch.setattr(provider, "send", watched)
    notification = NotificationFactory(template=TemplateFactory())
    deliveries = [DeliveryFactory(notification=notification, channel="email") for _ in range(12)]

    # When a batch is sent
    outcomes = deliveries_attempt(delivery_ids=[str(d.id) for d in deliveries])

    # Then every call ran on the provider's threads, none with a database connection
    assert [o.result for o in outcomes.values()] == ["sent"] * 12
    assert len(seen) == 12
    assert all(name.startswith("send-sendgrid") for name, _ in seen)
    assert all(conn is None for _, conn in seen)
    assert real_sendgrid.stats()["accepted"] == 12


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_worker_memory_stays_flat_when_the_backlog_grows_tenfold(
    worker_factory: Callable[..., Worker], sendgrid: Simulator, demo: dict[str, Any]
) -> None:
    # Given SendGrid answering in 100 ms and one email worker (the Procfile's threads)
    sendgrid.fault(kind="latency", ms=100, jitter_ms=30)
    worker = worker_factory(
        queues=channel_queues(Channel.EMAIL),
        concurrency=8,
        name="email",
        env={"SENDGRID_RATE_PER_SECOND": "0"},
    )
    # When it drains a backlog of 200, then one of 2,000
    small = emails(demo["client"], demo["template"], 200)
    wait_until(lambda: sent_count(small) == 200, timeout=60)
    after_small = peak_rss_kib(worker.popen.pid)
    big = emails(demo["client"], demo["template"], 2000, start=200)
    wait_until(lambda: sent_count(big) == 2000, timeout=180)
    after_big = peak_rss_kib(worker.popen.pid)

    # Then its peak memory grew by less than a tenth (what a backlog held in memory would cost)
    print(f"[memory] peak RSS after 200: {after_small} KiB, after 2,000 more: {after_big} KiB")
    assert after_big - after_small < after_small / 10
