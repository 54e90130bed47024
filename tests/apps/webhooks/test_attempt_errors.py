"""Nothing an attempt meets leaves its message stuck in `sending`: an unexpected exception is a
failed attempt with its error recorded (the breaker told, the failing streak begun); a
Retry-After that is not ASCII digits is ignored; an IDN host is stored as A-labels; the sweep
makes a message whose last attempt's worker died a dead letter, not a further attempt."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.webhooks import attempts
from apps.webhooks.attempts import endpoint_breaker, max_attempts, message_attempt
from apps.webhooks.dispatch import messages_dispatch_due
from apps.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from apps.webhooks.services import endpoint_create, endpoint_ping
from apps.webhooks.transport import retry_after_seconds
from tests.factories import WebhookEndpointFactory, WebhookMessageFactory
from tests.support.receiver import Receiver, Reply

pytestmark = [pytest.mark.django_db]

M = MessageStatus
NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def ping_to(client: Any, url: str) -> WebhookMessage:
    endpoint = endpoint_create(
        client=client, url=url, events_=["delivery.sent"], description="", include_content=False
    )
    return endpoint_ping(endpoint=endpoint)


def failed_once(message: WebhookMessage) -> WebhookAttempt:
    message.refresh_from_db()
    assert message.state == M.PENDING  # retried, not stuck in sending
    (attempt,) = WebhookAttempt.objects.filter(message=message)
    assert not attempt.ok
    endpoint = WebhookEndpoint.objects.get(pk=message.endpoint_id)
    assert endpoint.failing_since is not None
    breaker = endpoint_breaker(str(endpoint.pk))
    assert breaker._redis.hget(breaker.key, "failures") == b"1"  # the breaker was told
    return attempt


@pytest.mark.parametrize(
    "value", ["\xb2", "1\u0663", "\u0661\u0662", "12.5", "-3", "1e9", "9" * 11]
)
def test_a_retry_after_that_is_not_ascii_digits_is_ignored(value: str) -> None:
    assert retry_after_seconds(value, now=NOW) is None


def test_retry_after_in_seconds_and_as_a_date_still_read() -> None:
    assert retry_after_seconds(" 120 ", now=NOW) == 120.0
    assert retry_after_seconds("Fri, 01 May 2026 00:01:00 GMT", now=NOW) == 60.0


def test_a_superscript_retry_after_from_a_receiver_is_a_plain_failure(
    demo: dict[str, Any],
) -> None:
    receiver = Receiver(Reply(status=503, headers={"Retry-After": "\xb2"}))
    try:
        message = ping_to(demo["client"], receiver.url)
        assert message_attempt(message_id=message.pk) == "pending"
    finally:
        receiver.stop()
    assert failed_once(message).status_code == 503


def test_an_unexpected_error_in_the_send_is_a_recorded_failure(
    demo: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = ping_to(demo["client"], receiver.url)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise UnicodeEncodeError("ascii", "bücher", 1, 2, "ordinal not in range(128)")

    monkeypatch.setattr(attempts, "post", broken)

    assert message_attempt(message_id=message.pk) == "pending"
    assert failed_once(message).error.startswith("UnicodeEncodeError:")


def test_an_idn_host_is_stored_as_a_labels(demo: dict[str, Any]) -> None:
    message = ping_to(demo["client"], "https://Bücher.example:8443/hook?x=1")

    assert message.endpoint.url == "https://xn--bcher-kva.example:8443/hook?x=1"


def test_an_idn_host_stored_before_is_sent_as_a_labels(
    demo: dict[str, Any], receiver: Receiver, resolving_to: Any
) -> None:
    resolving_to("127.0.0.1")
    port = receiver.url.split(":")[2].split("/")[0]
    endpoint = WebhookEndpointFactory(client=demo["client"], url=f"http://bücher.example:{port}/")
    message = endpoint_ping(endpoint=endpoint)

    assert message_attempt(message_id=message.pk) == "delivered"
    (got,) = receiver.received
    assert got.headers["host"] == f"xn--bcher-kva.example:{port}"


@pytest.mark.parametrize("url", ["https://a..b.example/x", "https://-x.example/x"])
def test_a_host_that_is_no_host_name_is_refused_at_registration(api: Any, url: str) -> None:
    response = api.post(
        "/api/v1/webhook-endpoints", {"url": url, "events": ["delivery.sent"]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "url" in response.json()["fields"]


def test_the_sweep_makes_a_stale_last_attempt_a_dead_letter() -> None:
    now = timezone.now()
    gone = now - dt.timedelta(seconds=1)
    last = WebhookMessageFactory(state=M.SENDING, attempts=max_attempts(), next_attempt_at=gone)
    earlier = WebhookMessageFactory(state=M.SENDING, attempts=2, next_attempt_at=gone)

    assert messages_dispatch_due(now=now) == 1

    last.refresh_from_db()
    earlier.refresh_from_db()
    assert last.state == M.DEAD
    assert last.last_error.startswith("attempts exhausted")
    assert (earlier.state, earlier.attempts) == (M.PENDING, 2)
