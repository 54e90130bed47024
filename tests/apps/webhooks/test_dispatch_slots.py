"""No more deliver tasks for an endpoint than it has free in-flight slots: a committed batch and
the sweep publish that many of its oldest messages and leave the rest undispatched (pending) for
the sweep; a finished attempt hands its slot to the next one; Redis failing, one per endpoint.
Real PostgreSQL and Redis; the tasks counted where they leave for the broker (send_task)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from apps.webhooks import redis_guard
from apps.webhooks.attempts import message_attempt
from apps.webhooks.dispatch import messages_dispatch_due
from apps.webhooks.models import MessageStatus, WebhookEndpoint, WebhookMessage
from apps.webhooks.outbox import message_new, messages_write
from apps.webhooks.publish import DELIVER_TASK, DISPATCH_TASK
from apps.webhooks.services import endpoint_create
from apps.webhooks.slots import slot_give_back, slot_take
from apps.webhooks.tasks import dispatch
from tests.factories import WebhookEndpointFactory
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.django_db]

M = MessageStatus
Published = list[tuple[str, list[Any]]]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """Every task published, recorded at the broker's boundary instead of sent."""
    from celery import current_app

    sent: Published = []

    def record(name: str, args: list[Any] | None = None, **_: Any) -> None:
        sent.append((name, list(args or [])))

    monkeypatch.setattr(current_app, "send_task", record)
    return sent


def delivers(sent: Published) -> list[int]:
    return [args[0] for name, args in sent if name == DELIVER_TASK]


def batch_committed(
    endpoint: WebhookEndpoint, n: int, sent: Published, capture: Callable[..., Any]
) -> list[int]:
    """n messages written by the outbox in one batch, committed, and its dispatch task run."""
    now = timezone.now()
    rows = [
        message_new(
            endpoint, event_id=f"evt_{endpoint.pk.hex[:8]}_{i}", type_="ping", at=now, data={}
        )
        for i in range(n)
    ]
    before = len(sent)
    with capture(execute=True):
        messages_write(rows)
    for name, args in sent[before:]:
        if name == DISPATCH_TASK:
            dispatch(*args)
    return [m.pk for m in rows]


def hold_slots(endpoint: WebhookEndpoint, n: int) -> list[str]:
    tokens = [slot_take(str(endpoint.pk), hold_seconds=60) for _ in range(n)]
    assert all(tokens)
    return [t for t in tokens if t]


def undispatched(ids: list[int]) -> int:
    return WebhookMessage.objects.filter(
        id__in=ids, state=M.PENDING, dispatched_at__isnull=True
    ).count()


def test_with_the_slots_all_held_a_batch_of_50_publishes_nothing_nor_does_the_sweep(
    published: Published, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    cap = settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT
    endpoint = WebhookEndpointFactory()
    hold_slots(endpoint, cap)

    ids = batch_committed(endpoint, 50, published, django_capture_on_commit_callbacks)

    assert delivers(published) == []
    assert undispatched(ids) == 50  # pending, left to the sweep
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_dispatch_due() == 0
    assert delivers(published) == []


def test_a_batch_publishes_the_free_slots_worth_oldest_first_and_the_sweep_the_freed_ones(
    published: Published, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    cap = settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT
    endpoint = WebhookEndpointFactory()
    tokens = hold_slots(endpoint, 1)

    ids = batch_committed(endpoint, 50, published, django_capture_on_commit_callbacks)

    assert delivers(published) == ids[: cap - 1]
    assert undispatched(ids) == 50 - (cap - 1)

    hold_slots(endpoint, cap - 1)  # their tasks took the other slots: full again
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_dispatch_due() == 0
    for token in tokens:
        slot_give_back(str(endpoint.pk), token)
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert messages_dispatch_due() == 1  # one slot given back

    assert delivers(published) == [ids[cap - 1]]
    assert undispatched(ids) == 50 - cap


def test_another_endpoints_full_slots_hold_back_only_its_own_messages(
    published: Published, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    cap = settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT
    slow, fast = WebhookEndpointFactory(), WebhookEndpointFactory()
    hold_slots(slow, cap)
    batch_committed(slow, 10, published, django_capture_on_commit_callbacks)
    fast_ids = batch_committed(fast, 10, published, django_capture_on_commit_callbacks)

    assert delivers(published) == fast_ids[:cap]


def test_with_redis_failing_one_message_per_endpoint_is_published(
    published: Published,
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = WebhookEndpointFactory(), WebhookEndpointFactory()
    # Redis failed moments ago: the fail-fast client backs off (RedisSkipped, a RedisError).
    monkeypatch.setattr(redis_guard, "_skipped_until", time.monotonic() + 60)

    a = batch_committed(first, 5, published, django_capture_on_commit_callbacks)
    b = batch_committed(second, 5, published, django_capture_on_commit_callbacks)
    assert delivers(published) == [a[0], b[0]]
    published.clear()
    WebhookMessage.objects.filter(id__in=a[:1] + b[:1]).update(dispatched_at=None)  # lost

    with django_capture_on_commit_callbacks(execute=True):
        assert messages_dispatch_due() == 2
    assert sorted(delivers(published)) == sorted([a[0], b[0]])


def test_a_finished_attempt_hands_its_slot_to_the_next_message(
    demo: dict[str, Any],
    receiver: Receiver,
    published: Published,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    cap = settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT
    endpoint = endpoint_create(
        client=demo["client"],
        url=receiver.url,
        events_=["delivery.sent"],
        description="",
        include_content=False,
    )
    ids = batch_committed(endpoint, cap + 3, published, django_capture_on_commit_callbacks)
    assert delivers(published) == ids[:cap]

    # A fast receiver: each attempt publishes the next, until every message is delivered.
    done: set[int] = set()
    while pending := [pk for pk in delivers(published) if pk not in done]:
        for pk in pending:
            with django_capture_on_commit_callbacks(execute=True):
                assert message_attempt(message_id=pk) == "delivered"
            done.add(pk)

    assert sorted(done) == ids
    assert len(receiver.received) == cap + 3
