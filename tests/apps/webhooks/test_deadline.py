"""An attempt ends by its deadline (WEBHOOKS_TIMEOUT_SECONDS), whatever the receiver does: one
that drips its answer a byte at a time (each read well within httpx's per-read timeout) is cut
at the deadline and recorded as a timed-out failure; a DNS lookup that hangs is cut too. The
lease outlasts the deadline; one endpoint gets a limited number of attempts at once; the sweep
does not queue behind slow receivers."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from django.utils import timezone

from apps.webhooks import addresses
from apps.webhooks.attempts import lease_seconds, message_attempt, message_claim
from apps.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from apps.webhooks.services import endpoint_create, endpoint_ping
from apps.webhooks.slots import slot_give_back, slot_take
from notifier.queues import MAINTENANCE_QUEUE, WEBHOOKS_QUEUE
from tests.support.drip import DripReceiver
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.django_db]

DEADLINE = 2.0
MARGIN = 1.5  # the attempt's own bookkeeping, on a loaded machine


@pytest.fixture
def short_deadline(settings: Any) -> None:
    settings.WEBHOOKS_TIMEOUT_SECONDS = DEADLINE


@pytest.fixture(params=[False, True], ids=["headers", "body"])
def dripping(request: pytest.FixtureRequest) -> Iterator[DripReceiver]:
    server = DripReceiver(body_only=request.param, every=0.5, for_seconds=12.0)
    yield server
    server.stop()


def ping_to(client: Any, url: str) -> WebhookMessage:
    endpoint = endpoint_create(
        client=client, url=url, events_=["delivery.sent"], description="", include_content=False
    )
    return endpoint_ping(endpoint=endpoint)


def test_a_slow_drip_receiver_is_cut_at_the_deadline(
    demo: dict[str, Any], short_deadline: None, dripping: DripReceiver
) -> None:
    message = ping_to(demo["client"], dripping.url)

    started = time.monotonic()
    outcome = message_attempt(message_id=message.pk)
    took = time.monotonic() - started

    assert outcome == "pending"  # a failure, retried
    assert DEADLINE - 0.2 <= took <= DEADLINE + MARGIN
    (attempt,) = WebhookAttempt.objects.filter(message=message)
    assert (attempt.ok, attempt.status_code, attempt.error) == (False, None, "timed out")
    assert attempt.duration_ms <= (DEADLINE + MARGIN) * 1000


def test_a_hanging_dns_lookup_is_cut_at_the_deadline(
    demo: dict[str, Any], short_deadline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = ping_to(demo["client"], "http://hangs.example.com/hook")

    def hang(*args: Any, **kwargs: Any) -> Any:
        time.sleep(DEADLINE + 3)
        raise socket.gaierror("too late")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    outcome = message_attempt(message_id=message.pk)
    took = time.monotonic() - started

    assert outcome == "pending"
    assert took <= DEADLINE + MARGIN
    (attempt,) = WebhookAttempt.objects.filter(message=message)
    assert "did not resolve within" in attempt.error


def test_a_lookup_that_cannot_start_for_busy_threads_defers_the_attempt_uncounted(
    demo: dict[str, Any], short_deadline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = ping_to(demo["client"], "http://busy.example.com/hook")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(addresses, "_resolver", pool)
    release = threading.Event()
    pool.submit(release.wait, 30)  # a hung lookup holding the only thread
    try:
        assert message_attempt(message_id=message.pk) == "pending"
    finally:
        release.set()
        pool.shutdown()

    message.refresh_from_db()
    assert (message.state, message.attempts) == (MessageStatus.PENDING, 0)  # uncounted
    assert not WebhookAttempt.objects.filter(message=message).exists()
    assert WebhookEndpoint.objects.get(pk=message.endpoint_id).failing_since is None


def test_the_lookup_pool_has_a_thread_per_worker_thread(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WEBHOOKS_CONCURRENCY = 24
    monkeypatch.setattr(addresses, "_resolver", None)
    pool = addresses._lookup_pool()
    try:
        assert pool._max_workers == 24
    finally:
        pool.shutdown()


def test_the_lease_outlasts_the_deadline_comfortably(
    short_deadline: None, demo: dict[str, Any]
) -> None:
    message = ping_to(demo["client"], "http://127.0.0.1:9/hook")
    now = timezone.now()

    claimed = message_claim(message_id=message.pk, now=now)

    assert claimed is not None
    assert claimed.state == MessageStatus.SENDING
    held = (claimed.next_attempt_at - now).total_seconds()
    assert held == lease_seconds() >= 2 * DEADLINE + 30


def test_an_endpoint_with_its_limit_under_way_gets_no_further_attempt(
    demo: dict[str, Any], settings: Any, receiver: Receiver
) -> None:
    settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    message = ping_to(demo["client"], receiver.url)
    other = ping_to(demo["client"], receiver.url + "/other")
    busy = slot_take(str(message.endpoint_id), hold_seconds=60)  # an attempt under way
    assert busy

    before = timezone.now()
    assert message_attempt(message_id=message.pk) == "pending"
    assert message_attempt(message_id=other.pk) == "delivered"  # another endpoint: its own

    message.refresh_from_db()
    assert (message.state, message.attempts) == (MessageStatus.PENDING, 0)  # uncounted
    # Back when an attempt under way has surely ended (its deadline), jittered: not every 2 s.
    wait = (message.next_attempt_at - before).total_seconds()
    assert settings.WEBHOOKS_TIMEOUT_SECONDS <= wait <= 2 * settings.WEBHOOKS_TIMEOUT_SECONDS + 1
    assert not WebhookAttempt.objects.filter(message=message).exists()
    assert len(receiver.received) == 1
    slot_give_back(str(message.endpoint_id), busy)
    WebhookMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert message_attempt(message_id=message.pk) == "delivered"


def test_the_sweep_runs_on_maintenance_not_behind_slow_receivers_nor_before_digests() -> None:
    router = current_app.amqp.router
    assert router.route({}, "webhooks.dispatch_due")["queue"].name == MAINTENANCE_QUEUE
    assert router.route({}, "webhooks.deliver")["queue"].name == WEBHOOKS_QUEUE
    assert router.route({}, "webhooks.dispatch")["queue"].name == WEBHOOKS_QUEUE
