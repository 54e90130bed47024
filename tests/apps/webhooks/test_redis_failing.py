"""An attempt with the service's Redis not answering (a black hole: it accepts connections and
never replies): the breaker and the in-flight slots cannot be asked, so the attempt is deferred,
unsent and uncounted, within about a second (fail-fast client) rather than ~20 s per call that
would outlive the lease; and for redis_guard.BACKOFF_SECONDS the process does not wait on Redis
again."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from apps.webhooks import redis_guard
from apps.webhooks.attempts import REDIS_WAIT_SECONDS, message_attempt
from apps.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from apps.webhooks.services import endpoint_create, endpoint_ping
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A Redis URL whose port accepts connections (the kernel's backlog) and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


def test_with_redis_black_holed_the_attempt_is_deferred_quickly_unsent_and_uncounted(
    demo: dict[str, Any],
    receiver: Receiver,
    settings: Any,
    black_hole: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = endpoint_create(
        client=demo["client"],
        url=receiver.url,
        events_=["delivery.sent"],
        description="",
        include_content=False,
    )
    first, second = endpoint_ping(endpoint=endpoint), endpoint_ping(endpoint=endpoint)
    monkeypatch.setattr(redis_guard, "_skipped_until", 0.0)  # restored after the test
    settings.REDIS_URL = black_hole

    started = time.monotonic()
    before = timezone.now()
    assert message_attempt(message_id=first.pk) == "pending"
    took = time.monotonic() - started
    assert took < 3.0  # one fail-fast wait (1 s), not redis-py's retries of 5 s each

    started = time.monotonic()
    assert message_attempt(message_id=second.pk) == "pending"
    assert time.monotonic() - started < 0.5  # backing off: Redis not waited on again

    assert receiver.received == []
    assert not WebhookAttempt.objects.exists()
    for message in WebhookMessage.objects.filter(pk__in=[first.pk, second.pk]):
        assert (message.state, message.attempts) == (MessageStatus.PENDING, 0)
        wait = (message.next_attempt_at - before).total_seconds()
        assert REDIS_WAIT_SECONDS <= wait <= 2 * REDIS_WAIT_SECONDS + 5
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is None
