"""Provider protection with a real worker: the SendGrid breaker opens and email fails over to
SMTP (no SendGrid calls while open); waiting on a breaker or a rate limit is not an attempt."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from rest_framework.test import APIClient

from apps.deliveries.models import Attempt, Delivery, DeliveryStatus
from notifier.breaker import OPEN, CircuitBreaker
from tests.factories import RecipientFactory
from tests.support.processes import Simulator, Worker, wait_until
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.pipeline]


def post_email(api: APIClient, recipient: str = "user-1", order: str = "A-1") -> str:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": recipient,
            "template": "order_shipped",
            "variables": {"order_id": order},
            "channels": ["email"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return str(response.json()["deliveries"][0]["id"])


def all_sent(ids: list[str]) -> bool:
    return Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENT).count() == len(ids)


def sendgrid_breaker(redis_client: redis.Redis) -> CircuitBreaker:
    return CircuitBreaker(
        redis_client, "sendgrid", failure_threshold=3, open_seconds=60, probe_timeout_seconds=20
    )


def test_breaker_open_sends_email_through_smtp_and_sendgrid_gets_no_calls(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    smtp: SmtpServer,
    api: APIClient,
    demo: dict[str, object],
    redis_client: redis.Redis,
) -> None:
    # Given SendGrid answering 503 to everything, and SMTP configured as its failover
    sendgrid.fault(kind="status", status=503)
    worker_factory(
        env={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "BREAKER_FAILURE_THRESHOLD": "3",
            "BREAKER_OPEN_SECONDS": "60",
            "RETRY_BASE_SECONDS": "0.2",
        }
    )

    # When three emails fail on SendGrid (opening its breaker) ...
    first = [post_email(api, order=f"A-{n}") for n in range(3)]
    wait_until(lambda: all_sent(first), timeout=60)
    assert sendgrid_breaker(redis_client).state() == OPEN
    calls_when_opened = len(sendgrid.requests())
    assert calls_when_opened >= 3
    assert all(r["status"] == 503 for r in sendgrid.requests())

    # ... then more email while it is open
    later = [post_email(api, order=f"B-{n}") for n in range(4)]
    wait_until(lambda: all_sent(later), timeout=60)

    # Then everything went out through SMTP, and SendGrid saw nothing more
    assert len(sendgrid.requests()) == calls_when_opened
    assert sorted(smtp.delivery_ids()) == sorted(first + later)
    assert set(
        Delivery.objects.filter(id__in=first + later).values_list("provider", flat=True)
    ) == {"smtp"}
    # The failed SendGrid attempts are on record, each followed by one SMTP attempt that sent.
    for delivery_id in first:
        rows = list(Attempt.objects.filter(delivery_id=delivery_id).order_by("number"))
        assert rows[-1].provider == "smtp"
        assert rows[-1].outcome == Attempt.Outcome.SENT
        assert {r.provider for r in rows[:-1]} == {"sendgrid"}
    for delivery_id in later:
        (row,) = Attempt.objects.filter(delivery_id=delivery_id)
        assert (row.provider, row.outcome, row.response_code) == ("smtp", "sent", 250)
    # The message is the rendered template, with its HTML part.
    message = next(m for m in smtp.messages if m["X-Delivery-Id"] == later[0])
    assert message["Subject"] == "Order B-0 shipped"
    assert message["To"] == "user-1@example.com"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()
        if not p.is_multipart()
    }
    assert parts["text/plain"] == "Hi Ada, order B-0 is on its way."
    assert parts["text/html"] == "<p>Hi Ada, order <b>B-0</b> is on its way.</p>"


def test_breaker_probe_closes_it_and_sendgrid_is_used_again(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    smtp: SmtpServer,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Given an open SendGrid breaker (two 503s with a threshold of two), failing over to SMTP
    sendgrid.fault(kind="status", status=503, count=2)
    worker_factory(
        env={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "BREAKER_FAILURE_THRESHOLD": "2",
            "BREAKER_OPEN_SECONDS": "3",
            "RETRY_BASE_SECONDS": "0.1",
        },
        concurrency=1,
    )
    opened = [post_email(api, order="A-1"), post_email(api, order="A-2")]
    wait_until(lambda: all_sent(opened), timeout=60)
    assert len(sendgrid.requests()) == 2

    # When SendGrid has recovered and the open period is over
    wait_until(lambda: len(smtp.messages) == 2, timeout=30)
    time.sleep(3.5)
    after = [post_email(api, order=f"C-{n}") for n in range(3)]
    wait_until(lambda: all_sent(after), timeout=60)

    # Then the probe went to SendGrid, succeeded, and closed the breaker for the rest
    assert sorted(r["key"] for r in sendgrid.accepted()) == sorted(after)
    assert sorted(smtp.delivery_ids()) == sorted(opened)


def test_waiting_on_an_open_breaker_is_not_an_attempt(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Given no failover, and a breaker that one failure opens for 3 s
    sendgrid.fault(kind="status", status=503, count=1)
    worker_factory(
        env={
            "BREAKER_FAILURE_THRESHOLD": "1",
            "BREAKER_OPEN_SECONDS": "3",
            "RETRY_BASE_SECONDS": "0.1",
        }
    )

    # When the first attempt fails and the retry finds the breaker open
    delivery_id = post_email(api)
    wait_until(lambda: all_sent([delivery_id]), timeout=60)

    # Then the delivery waited ~3 s without using attempts: exactly two, both on record
    delivery = Delivery.objects.get(id=delivery_id)
    assert delivery.attempts == 2
    rows = list(Attempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(r.number, r.outcome) for r in rows] == [(1, "transient"), (2, "sent")]
    assert (rows[1].started_at - rows[0].finished_at).total_seconds() >= 2.5
    assert [r["status"] for r in sendgrid.requests()] == [503, 202]


def test_rate_limit_spaces_sends_without_using_attempts(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Given SendGrid limited to 2 sends/s with no burst, shared by two worker processes
    env = {
        "SENDGRID_RATE_PER_SECOND": "2",
        "SENDGRID_BURST": "1",
        "PROVIDER_WAIT_JITTER_SECONDS": "0.2",
    }
    worker_factory(env=env, name="rl-a")
    worker_factory(env=env, name="rl-b")
    client = demo["client"]
    for n in range(2, 7):
        RecipientFactory(client=client, external_id=f"user-{n}")

    # When six emails are posted at once
    ids = [post_email(api, recipient=f"user-{n}") for n in range(1, 7)]
    wait_until(lambda: all_sent(ids), timeout=60)

    # Then they went out no faster than the rate (5 gaps of >= 0.5 s), one attempt each
    times = sorted(r["at"] for r in sendgrid.accepted())
    assert len(times) == 6
    assert times[-1] - times[0] >= 2.2
    assert list(Delivery.objects.filter(id__in=ids).values_list("attempts", flat=True)) == [1] * 6
    assert Attempt.objects.filter(delivery_id__in=ids).count() == 6
