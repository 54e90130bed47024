"""A listener of the lifecycle's announcements (the webhooks' outbox, any later one) that fails
inside the send's transaction costs its own work only: the send the provider accepted stays
`sent`, recorded once, and the reconciler never sends it again (real PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import markcoroutinefunction
from django.db import connection, transaction
from django.utils import timezone

from apps.core import metrics
from apps.core.signals import GuardedSignal
from apps.deliveries.guards import provider_breaker, provider_bucket
from apps.deliveries.maintenance import deliveries_reconcile
from apps.deliveries.models import Attempt, Delivery, DeliveryStatus
from apps.deliveries.providers import provider_for
from apps.deliveries.sending import deliveries_attempt
from apps.deliveries.signals import deliveries_changed
from apps.recipients.models import RecipientEvent
from apps.recipients.services import preference_unsubscribe
from apps.recipients.signals import recipient_event_recorded
from notifier.providers.base import OutboundMessage, SendResult
from tests.factories import DeliveryFactory, NotificationFactory, RecipientFactory

pytestmark = [pytest.mark.django_db]


def raising(**_: Any) -> None:
    raise RuntimeError("a listener's bug")


def failing_sql(**_: Any) -> None:
    with connection.cursor() as cursor:  # poisons a PostgreSQL transaction without a savepoint
        cursor.execute("SELECT 1 / 0")


def dropped(name: str) -> float:
    value = metrics.EVENTS_DROPPED.labels(receiver=name)._value.get()
    return float(value)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch, clean_redis: redis.Redis) -> Iterator[list[str]]:
    """The in-process email provider accepting every message; the ids it was asked to send."""
    provider_breaker.cache_clear()
    provider_bucket.cache_clear()
    asked: list[str] = []

    def send(message: OutboundMessage) -> SendResult:
        asked.append(message.delivery_id)
        return SendResult(provider_message_id=f"msg-{message.delivery_id}", status_code=202)

    monkeypatch.setattr(provider_for("email"), "send", send)
    yield asked
    provider_breaker.cache_clear()
    provider_bucket.cache_clear()


@pytest.fixture
def listening() -> Iterator[Callable[[Any, Callable[..., None]], None]]:
    connected: list[tuple[Any, Callable[..., None]]] = []

    def listen(signal: Any, receiver: Callable[..., None]) -> None:
        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))

    yield listen
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.mark.parametrize("receiver", [raising, failing_sql], ids=["raises", "failing-sql"])
def test_a_failing_listener_never_rolls_back_a_send(
    sends: list[str], listening: Any, receiver: Callable[..., None]
) -> None:
    name = f"{__name__}.{receiver.__qualname__}"
    before = dropped(name)
    listening(deliveries_changed, receiver)
    notification = NotificationFactory()
    deliveries = [DeliveryFactory(notification=notification) for _ in range(2)]
    ids = [str(d.id) for d in deliveries]

    outcomes = deliveries_attempt(delivery_ids=ids)

    assert {o.result for o in outcomes.values()} == {"sent"}
    rows = Delivery.objects.filter(id__in=ids)
    assert {d.status for d in rows} == {DeliveryStatus.SENT}
    assert Attempt.objects.filter(delivery_id__in=ids).count() == 2
    assert dropped(name) == before + 1  # one batch, one failed call
    # Nothing for the reconciler to send again, however late it looks.
    later = timezone.now() + dt.timedelta(hours=2)
    assert deliveries_reconcile(now=later) == 0
    deliveries_attempt(delivery_ids=ids)  # a duplicate message of the batch: claimed by none
    assert sorted(sends) == sorted(ids)  # each sent exactly once


def test_the_other_listeners_still_run_after_one_fails(sends: list[str], listening: Any) -> None:
    heard: list[int] = []
    listening(deliveries_changed, failing_sql)
    listening(deliveries_changed, lambda changes, **_: heard.append(len(changes)))
    delivery = DeliveryFactory()

    deliveries_attempt(delivery_ids=[str(delivery.id)])

    assert heard == [1]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_an_unsubscribe_never_fails_because_of_a_listener(listening: Any) -> None:
    listening(recipient_event_recorded, failing_sql)
    recipient = RecipientFactory()

    preference_unsubscribe(
        recipient=recipient, category="marketing", channel="email", source="link"
    )

    assert RecipientEvent.objects.filter(
        recipient=recipient, kind=RecipientEvent.Kind.UNSUBSCRIBED
    ).exists()


def test_the_idle_check_holds_no_weak_receiver_alive_and_goes_with_disconnect() -> None:
    signal = GuardedSignal()
    calls: list[str] = []

    def receiver(**_: Any) -> None:
        calls.append("called")

    signal.connect(receiver, idle=lambda: True)
    signal.send(sender=None)
    assert calls == []  # idle: not called
    signal.disconnect(receiver)
    signal.connect(receiver)  # again, without an idle check: the old one is gone
    signal.send(sender=None)
    assert calls == ["called"]

    def gone(**_: Any) -> None:
        pass

    signal.connect(gone, idle=lambda: True)
    reference = weakref.ref(gone)
    del gone
    gc.collect()
    assert reference() is None


def test_only_send_runs_receivers_each_in_its_savepoint() -> None:
    signal = GuardedSignal()
    with pytest.raises(TypeError):
        signal.connect(markcoroutinefunction(lambda **_: None))
    signal.connect(failing_sql, weak=False)
    with transaction.atomic():
        ((_, error),) = signal.send_robust(sender=None)
        assert isinstance(error, Exception)
        assert RecipientEvent.objects.count() >= 0  # the transaction is still usable
    with pytest.raises(NotImplementedError):
        asyncio.run(signal.asend(sender=None))
    with pytest.raises(NotImplementedError):
        asyncio.run(signal.asend_robust(sender=None))
