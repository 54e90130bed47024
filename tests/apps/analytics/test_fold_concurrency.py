"""Two folds at once never count a row twice nor lose one: the second skips the rows the first
holds (FOR UPDATE SKIP LOCKED) and adds to the rollup rows after the first's commit, on top of
what it wrote. Real PostgreSQL transactions in threads, each with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from apps.analytics.fold_selectors import rollup_totals, timeline_totals
from apps.analytics.models import Rollup
from apps.analytics.services import Folded, rollup_fold, rollups_fold_pending
from apps.deliveries.models import DeliveryEvent
from tests.apps.analytics.helpers import T0, delivery, event, seconds
from tests.factories import AttemptFactory, NotificationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _timelines(count: int) -> int:
    notification = NotificationFactory()
    for n in range(count):
        d = delivery(notification=notification, channel="email", provider="sendgrid")
        event(d, "queued", T0 + seconds(n))
        event(d, "sent", T0 + seconds(n + 1))
        event(d, "delivered", T0 + seconds(n + 2))
        event(d, "opened", T0 + seconds(n + 3))
        AttemptFactory(delivery=d, outcome="sent", cost_micros=400, finished_at=T0)
    return DeliveryEvent.objects.count()


def _in_thread(target: Callable[[], Any], out: list[Any]) -> threading.Thread:
    def run() -> None:
        try:
            out.append(target())
        except Exception as exc:  # reported by the test's assertion on `out`
            out.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_second_fold_skips_the_rows_the_first_holds_and_adds_after_its_commit() -> None:
    total = _timelines(10)
    held, release = threading.Event(), threading.Event()

    def first() -> Folded:
        with transaction.atomic():  # the fold's own transaction, kept open until released
            folded = rollup_fold(limit=12)
            held.set()
            release.wait(timeout=30)
        return folded

    first_out: list[Any] = []
    second_out: list[Any] = []
    a = _in_thread(first, first_out)
    assert held.wait(timeout=30)
    b = _in_thread(lambda: rollups_fold_pending(limit=1000), second_out)
    b.join(timeout=1.0)
    assert b.is_alive()  # waiting on the rollup rows the first fold holds
    release.set()
    a.join(timeout=30)
    b.join(timeout=30)

    assert [f.events for f in first_out] == [12]
    assert [f.events for f in second_out] == [total - 12]  # skipped the 12 held rows
    assert DeliveryEvent.objects.filter(counted=False).count() == 0
    assert rollup_totals() == timeline_totals()
    assert rollup_totals()["opened"] == 10
    assert Rollup.objects.count() == 2


def test_folds_racing_in_small_batches_count_every_row_once() -> None:
    _timelines(40)
    outs: list[list[Any]] = [[] for _ in range(4)]
    threads = [
        _in_thread(lambda: rollups_fold_pending(limit=5, budget_seconds=60), out) for out in outs
    ]
    for thread in threads:
        thread.join(timeout=120)

    results = [r for out in outs for r in out]
    assert all(isinstance(r, Folded) for r in results), results
    assert sum(r.events for r in results) == DeliveryEvent.objects.count()
    assert sum(r.attempts for r in results) == 40
    assert rollup_totals() == timeline_totals()
    assert rollup_totals() == {
        "accepted": 40,
        "skipped": 0,
        "digested": 0,
        "cancelled": 0,
        "sent": 40,
        "delivered": 40,
        "opened": 40,
        "clicked": 0,
        "read": 0,
        "failed": 0,
        "dead": 0,
        "cost_micros": 16_000,
    }
