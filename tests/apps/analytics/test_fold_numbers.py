"""The fold's whole numbers: the UTC hour (hours since the epoch) and the delays (milliseconds,
half up, never negative) that PostgreSQL works out in the take's SQL are those the SQLite path
works out in Python (`epoch_hour`, `ms_between`), at the edges: half milliseconds, clock skew,
before 1970. And the rollup keys are written in one sorted order, whatever order they come in
(two folds writing the same keys in other orders could deadlock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from apps.analytics import services
from apps.analytics.increments import Increment, Key
from apps.deliveries.counting import epoch_hour, events_take, ms_between
from tests.apps.analytics.helpers import T0, delivery, event
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

MS = dt.timedelta(milliseconds=1)
US = dt.timedelta(microseconds=1)
BEFORE_1970 = dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
# (created, its `sent` event's time): the delay's edges.
CASES = [
    (T0, T0 + 50 * MS + 500 * US),  # 50.5 ms: half up, 51
    (T0, T0 + 50 * MS + 499 * US),  # 50.499 ms: 50
    (T0, T0 + US),  # 1 us: 0
    (T0, T0 - 500 * US),  # skew of half a millisecond: 0
    (T0, T0 - 1500 * MS),  # skew: 0
    (BEFORE_1970 - 2 * MS, BEFORE_1970),  # an hour before the epoch: -1
    (dt.datetime(1900, 1, 1, 0, 30, tzinfo=dt.UTC), dt.datetime(1900, 1, 1, 0, 31, tzinfo=dt.UTC)),
]


def test_the_python_numbers_are_half_up_and_never_negative() -> None:
    assert [ms_between(at, created) for created, at in CASES] == [51, 50, 0, 0, 0, 2, 60000]
    assert epoch_hour(BEFORE_1970) == -1
    assert epoch_hour(dt.datetime(1970, 1, 1, 1, tzinfo=dt.UTC)) == 1


def test_the_sql_numbers_are_the_python_ones() -> None:
    notification = NotificationFactory()
    expected = {}
    for created, at in CASES:
        d = delivery(notification=notification, created=created, sent_at=created + 3 * MS)
        e = event(d, "sent", at)
        expected[e.id] = (epoch_hour(at), ms_between(at, created))
        report = at + 7 * MS + 500 * US  # delivered is in the sent group: its accept->sent too
        later = event(d, "delivered", report)
        expected[later.id] = (epoch_hour(report), ms_between(report, created))
    with transaction.atomic():
        rows = events_take(limit=100)
        transaction.set_rollback(True)

    got = {row[0]: (row[2], row[6]) for row in rows}
    assert got == expected
    delivered = {row[0]: row[7] for row in rows if row[1] == "delivered"}
    # sent->delivered from the delivery's sent_at, when not later than the report
    assert sorted(delivered.values(), key=repr) == sorted(
        [
            ms_between(at + 7 * MS + 500 * US, created + 3 * MS)
            if created + 3 * MS <= at + 7 * MS + 500 * US
            else None
            for created, at in CASES
        ],
        key=repr,
    )


def test_rollup_keys_are_written_in_sorted_order_whatever_order_they_come_in() -> None:
    notification = NotificationFactory()
    client, template = notification.client_id, notification.template_id
    keys = [
        Key(T0 + dt.timedelta(hours=h), client, template, channel, "", "")
        for h in range(30)
        for channel in ("sms", "email")
    ]
    increments = {key: Increment() for key in reversed(keys)}  # the worst order
    written: list[Any] = []

    def spy(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("INSERT INTO analytics_rollup"):
            step = len(services.UPSERT_COLUMNS)
            written.extend(params[i : i + 4] for i in range(0, len(params), step))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        services._rollups_add(increments)

    order = [(hour, channel) for hour, _client, _template, channel in written]
    assert len(order) == len(keys)
    assert order == sorted(order)
