"""A send message is published at most once per call: only getting a connection is tried
again, never a MULTI/EXEC that may have run. A request's publish is one short try (the
reconciler re-queues what the broker did not take). A duplicate message that does arrive for a
`retrying` delivery does not send it before its backoff is over."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import broker
from apps.deliveries.api import views
from apps.deliveries.fanout import fan_outs_resume
from apps.deliveries.lifecycle import deliveries_claim
from apps.deliveries.maintenance import deliveries_reconcile
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.deliveries.queueing import LEDGER_KEY, publish_sends
from config.celery import app
from tests.apps.deliveries.test_topic_notifications import fan_out_messages
from tests.factories import (
    DeliveryFactory,
    NotificationFactory,
    SubscriptionFactory,
    TopicFactory,
)
from tests.support.queues import transaction_answer_lost

pytestmark = [pytest.mark.django_db]


def _messages(client: redis.Redis) -> int:
    return len(list(broker.queued_messages(client=client)))


@pytest.mark.parametrize("error", [redis.TimeoutError, redis.ConnectionError])
def test_a_transaction_whose_answer_is_lost_is_not_sent_again(
    clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    """EXEC ran, then the read timed out (or the connection reset): with the retry policy on,
    the transaction is still not repeated (redis-py's own retry included), and the entry goes
    (whether the message is there is unknown: the reconciler decides)."""
    delivery = DeliveryFactory(status=DeliveryStatus.QUEUED, notification=NotificationFactory())
    sent = transaction_answer_lost(monkeypatch, error)
    monkeypatch.setitem(app.conf, "task_publish_retry", True)
    with pytest.raises(error):
        publish_sends([(str(delivery.id), delivery.channel, delivery.priority)])

    assert (len(sent), _messages(clean_redis)) == (1, 1)
    assert clean_redis.zscore(LEDGER_KEY, str(delivery.id)) is None


class HungBroker:
    """A TCP server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.closed.set()
        self.server.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def hung_broker() -> Iterator[HungBroker]:
    hung = HungBroker()
    yield hung
    hung.close()


def _post_to_a_hung_broker(
    api: APIClient,
    body: dict[str, Any],
    *,
    hung: HungBroker,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    capture: Callable[..., Any],
) -> Any:
    """POST a notification (its publish after commit run) while the broker accepts connections
    and never answers, Celery's retry policy on (it must not apply); the broker is the real one
    again afterwards."""
    real_broker = settings.CELERY_BROKER_URL
    monkeypatch.setitem(app.conf, "task_publish_retry", True)
    # The queue depth is read (and cached) before a POST; these tests are about its publish.
    monkeypatch.setattr(views, "backpressure_check", lambda: None)
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{hung.port}/5"
    body = {"template": "order_shipped", "variables": {"order_id": "A-1"}, **body}
    with capture(execute=True):
        response = api.post("/api/v1/notifications", body, format="json")
    settings.CELERY_BROKER_URL = real_broker
    return response


def test_a_post_against_a_hung_broker_tries_once_and_the_reconciler_finds_the_delivery(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    hung_broker: HungBroker,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    calls: list[dict[str, Any]] = []
    publish = broker.messages_publish

    def spy(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs)
        publish(*args, **kwargs)

    monkeypatch.setattr("apps.deliveries.queueing.messages_publish", spy)

    response = _post_to_a_hung_broker(
        api,
        {"recipient": "user-1", "channels": ["email"]},
        hung=hung_broker,
        settings=settings,
        monkeypatch=monkeypatch,
        capture=django_capture_on_commit_callbacks,
    )

    assert response.status_code == 202, response.content
    assert [(c["fail_fast"], tuple(c["connect_waits"])) for c in calls] == [(True, ())]
    options = broker.publish_client(fail_fast=True).connection_pool.connection_kwargs
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (1.0, 1.0)
    assert len(hung_broker.accepted) == 1  # one connection, one try, no retry
    # The broker is back: the reconciler re-queues the delivery that has no message.
    [delivery] = Delivery.objects.filter(notification_id=response.json()["id"])
    assert delivery.status == DeliveryStatus.QUEUED
    later = timezone.now() + dt.timedelta(seconds=settings.RECONCILE_AFTER_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_reconcile(now=later) == 1
    assert _messages(clean_redis) == 1
    assert clean_redis.zscore(LEDGER_KEY, str(delivery.id)) is not None


@pytest.mark.timeout(30)  # with the retry policy, kombu kept the request for minutes
def test_a_topic_post_against_a_hung_broker_tries_once_and_the_resume_sweep_queues_it(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    hung_broker: HungBroker,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    topic = TopicFactory(client=demo["client"], key="watchers")
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])
    started = time.monotonic()
    response = _post_to_a_hung_broker(
        api,
        {"topic": "watchers", "channels": ["inapp"]},
        hung=hung_broker,
        settings=settings,
        monkeypatch=monkeypatch,
        capture=django_capture_on_commit_callbacks,
    )
    took = time.monotonic() - started

    assert response.status_code == 202, response.content
    assert len(hung_broker.accepted) == 1  # one connection, one try, no retry
    assert took < 2 * broker.FAIL_FAST_TIMEOUT_SECONDS + 1
    # The broker is back: the resume sweep queues the fan-out its message never reached.
    notification_id = response.json()["id"]
    later = timezone.now() + dt.timedelta(seconds=settings.FANOUT_STALL_SECONDS + 1)
    assert fan_outs_resume(now=later) == 1
    assert fan_out_messages(clean_redis) == [f"['{notification_id}']"]


# --- a duplicate message for a retrying delivery ---------------------------------------------


def test_a_retrying_delivery_is_not_claimed_before_its_next_attempt() -> None:
    notification = NotificationFactory()
    soon = timezone.now() + dt.timedelta(seconds=30)
    waiting = DeliveryFactory(
        status=DeliveryStatus.RETRYING, next_attempt_at=soon, notification=notification
    )
    due = DeliveryFactory(
        status=DeliveryStatus.RETRYING,
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1),
        notification=notification,
    )
    queued = DeliveryFactory(
        status=DeliveryStatus.QUEUED, next_attempt_at=soon, notification=notification
    )

    assert deliveries_claim(delivery_ids=[str(waiting.id)]) == set()
    taken = deliveries_claim(delivery_ids=[str(waiting.id), str(due.id), str(queued.id)])

    assert taken == {str(due.id), str(queued.id)}
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.RETRYING, 0)
