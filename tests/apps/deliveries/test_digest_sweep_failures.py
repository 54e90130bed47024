"""The digest sweep when a window fails to close: tried again later with a backoff, then closed
`failed` with its items dead letters; failing windows never hold up the others. And the sweep's
order (earliest close first) and its small transactions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries import digests
from apps.deliveries.dead_letters import dead_letter_replay
from apps.deliveries.digests import CLOSE_TRIES, digests_close_due
from apps.deliveries.models import DeadLetter, Delivery, DeliveryStatus, Digest
from notifier.queues import TIMERS_QUEUE
from tests.apps.deliveries.test_digest_sweep import (  # `comments`: the template fixture
    comment,
    comments,  # noqa: F401 - a fixture
    sweeps_queued,
)


def break_closing(monkeypatch: pytest.MonkeyPatch, keys: set[str]) -> None:
    """Closing the windows with these keys raises (as a digest whose delivery cannot be built)."""
    real = digests.digest_deliver

    def deliver(digest: Digest, **kwargs: Any) -> Delivery:
        if digest.key in keys:
            raise RuntimeError(f"broken digest {digest.key}")
        return real(digest, **kwargs)

    monkeypatch.setattr(digests, "digest_deliver", deliver)


@pytest.mark.django_db
@pytest.mark.usefixtures("comments")
def test_windows_that_keep_failing_do_not_hold_up_the_others(
    api: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
    clean_redis: redis.Redis,
) -> None:
    # Given three due windows, the two due first (and lowest by id) failing to close
    for n, post in enumerate(["p1", "p2", "p3"]):
        comment(api, n, post)
    order = list(Digest.objects.order_by("id").values_list("key", flat=True))
    start = timezone.now()
    for i, key in enumerate(order):
        Digest.objects.filter(key=key).update(closes_at=start + dt.timedelta(seconds=i))
    break_closing(monkeypatch, set(order[:2]))
    later = start + dt.timedelta(minutes=2)

    # When a sweep of two runs: both fail, are pushed back, and (a full batch) the next is queued
    with django_capture_on_commit_callbacks(execute=True):
        assert digests_close_due(now=later, batch=2) == 0
    assert sweeps_queued(clean_redis) == {TIMERS_QUEUE: 1}
    failing = Digest.objects.filter(key__in=order[:2])
    assert {(d.close_attempts, d.closes_at, d.closed_at) for d in failing} == {
        (1, later + dt.timedelta(seconds=5), None)
    }

    # Then the next sweep, at the same moment, closes the third
    assert digests_close_due(now=later, batch=2) == 1
    assert Digest.objects.get(key=order[2]).outcome == Digest.Outcome.SENT
    assert Digest.objects.filter(closed_at__isnull=True).count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("comments")
def test_a_window_failing_every_try_backs_off_then_closes_failed_with_its_items_dead(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a window with two items whose close always fails
    comment(api, 0, "p1")
    comment(api, 1, "p1")
    break_closing(monkeypatch, {"p1"})
    window = Digest.objects.get()
    at = window.closes_at

    # When the sweep tries it, each failure pushes it back: 5 s, doubling
    delays = []
    for _ in range(CLOSE_TRIES - 1):
        assert digests_close_due(now=at) == 0
        assert digests_close_due(now=at) == 0  # not due again at once
        window.refresh_from_db()
        delays.append((window.closes_at - at).total_seconds())
        at = window.closes_at
        assert window.closed_at is None
    assert delays == [5, 10, 20, 40, 80, 160, 320]

    # And the last try closes it `failed`: its items dead, each with a dead letter
    assert digests_close_due(now=at) == 0
    window.refresh_from_db()
    assert (window.outcome, window.closed_at, window.item_count, window.close_attempts) == (
        Digest.Outcome.FAILED,
        at,
        2,
        CLOSE_TRIES,
    )
    assert window.delivery is None
    items = Delivery.objects.filter(digest=window)
    assert {d.status for d in items} == {DeliveryStatus.DEAD}
    assert {d.reason for d in items} == {"digest failed to close"}
    letters = DeadLetter.objects.filter(delivery__digest=window)
    assert letters.count() == 2
    assert "RuntimeError: broken digest p1" in letters.first().last_error  # type: ignore[union-attr]
    for item in items:
        assert item.events.last().detail.startswith(  # type: ignore[union-attr]
            f"digest {window.pk} failed to close after {CLOSE_TRIES} tries"
        )

    # Then a replay sends an item on its own
    letter = letters.first()
    assert letter is not None
    dead_letter_replay(dead_letter_id=letter.pk, replayed_by="ops")
    assert Delivery.objects.get(pk=letter.delivery_id).status == DeliveryStatus.QUEUED


@pytest.mark.django_db
@pytest.mark.usefixtures("comments")
def test_the_sweep_closes_the_window_due_first_not_the_lowest_id(api: APIClient) -> None:
    # Given two due windows, the one with the higher id due first
    comment(api, 0, "p1")
    comment(api, 1, "p2")
    low, high = Digest.objects.order_by("id")
    now = timezone.now()
    Digest.objects.filter(pk=low.pk).update(closes_at=now - dt.timedelta(seconds=1))
    Digest.objects.filter(pk=high.pk).update(closes_at=now - dt.timedelta(seconds=2))

    # When a sweep of one runs, it closes the one due first
    assert digests_close_due(now=now, batch=1) == 1
    assert list(Digest.objects.filter(closed_at__isnull=False).values_list("pk", flat=True)) == [
        high.pk
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("comments")
def test_the_sweep_commits_each_chunk_before_locking_the_next(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two due windows, swept one per chunk
    comment(api, 0, "p1")
    comment(api, 1, "p2")
    first, second = Digest.objects.order_by("closes_at", "id")
    seen: dict[str, Any] = {}
    real = digests.digest_deliver

    def deliver(digest: Digest, **kwargs: Any) -> Delivery:
        if digest.pk == second.pk:  # another session sees the first closed, and not locked
            other = connections.create_connection("default")
            try:
                with other.cursor() as cursor:
                    cursor.execute(
                        "SELECT outcome FROM deliveries_digest WHERE id = %s FOR UPDATE NOWAIT",
                        [str(first.pk)],
                    )
                    seen["first"] = cursor.fetchone()[0]
            finally:
                other.close()
        return real(digest, **kwargs)

    monkeypatch.setattr(digests, "digest_deliver", deliver)

    # When the sweep runs
    assert digests_close_due(now=timezone.now() + dt.timedelta(minutes=2), chunk=1) == 2

    # Then the first chunk had committed (and let go of its lock) before the second closed
    assert seen == {"first": "sent"}
