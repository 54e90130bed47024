"""The INSERT's values computed directly (apps/deliveries/lifecycle/insert_values.py) are the
values Django's insert compiler prepares (`pre_save` with `add`, then `get_db_prep_save`): the
same value of the same type (a parameter's type is part of a prepared statement), and, for
several rows, the same JSON document. Checked value by value for edge cases, and on every
INSERT the API makes for requests using each optional feature."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

import pytest
from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext_lazy
from psycopg.types.json import Jsonb
from rest_framework.test import APIClient

from apps.deliveries.fanout import fan_out_chunk
from apps.deliveries.lifecycle import create
from apps.deliveries.lifecycle.create import _insert_shape, _json_rows
from apps.deliveries.lifecycle.insert_values import preparers, values_prepared
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus, Notification
from tests.factories import RecipientFactory, SubscriptionFactory, TopicFactory

URL = "/api/v1/notifications"
LATER = dt.datetime(2030, 1, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))


def _djangos(model: type[models.Model], rows: Sequence[models.Model]) -> list[list[Any]]:
    """What Django's insert compiler prepares for these rows (SQLInsertCompiler.prepare_value
    after pre_save_val), field by field."""
    shape = _insert_shape(model, connection.alias)
    assert shape is not None
    return [
        [f.get_db_prep_save(f.pre_save(row, True), connection) for f in shape.fields]
        for row in rows
    ]


def _typed(values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Each value with its type (a Jsonb by its object and its dumps function)."""
    return [(Jsonb, v.obj, v.dumps) if isinstance(v, Jsonb) else (type(v), v) for v in values]


def _assert_stamped(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """Each `auto_now` / `auto_now_add` field of each row holds the (frozen) clock's value, as
    Django's `pre_save` leaves it on the instance: checked before Django's preparation runs."""
    shape = _insert_shape(model, connection.alias)
    assert shape is not None
    stamped = [
        f.attname
        for f in shape.fields
        if isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add)
    ]
    assert stamped, model.__name__
    now = timezone.now()
    values = [[getattr(row, a) for a in stamped] for row in rows]
    assert values == [[now] * len(stamped) for _ in rows], model.__name__


def _assert_same_values(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    shape = _insert_shape(model, connection.alias)
    assert shape is not None

    ours = values_prepared(preparers(shape.fields, connection), rows, connection)
    _assert_stamped(model, rows)  # ours first, on rows Django's pre_save has not stamped
    ours_json = values_prepared(
        preparers(shape.fields, connection, json_ready=True), rows, connection
    )
    expected = _djangos(model, rows)

    assert [_typed(row) for row in ours] == [_typed(row) for row in expected], model.__name__
    assert _json_rows(shape.columns, ours_json) == _json_rows(shape.columns, expected)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """`timezone.now` held still: Django's `auto_now` values and ours are then the same."""
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


@pytest.mark.django_db
def test_edge_values_take_djangos_preparation(demo: dict[str, Any], frozen: dt.datetime) -> None:
    """Values the direct path does not handle (a lazy string, a naive datetime, a bool in an
    integer field, a UUID as text, an int as a JSON value) come out as Django prepares them."""
    template = demo["template"]
    notification = Notification(
        id=str(uuid.UUID(int=7)),
        client=demo["client"],
        template=template,
        template_version=template.versions.get(),
        variables=7,
        channels=["email"],
        priority=cast(Any, gettext_lazy("high")),
        category="news",
        send_at=LATER,
        send_time="",
        best_time_holdout=True,
        idempotency_key=None,
        recipient_count=3,
        throttle={"limit": 1, "window": "1h", "key": ""},
        response={"id": "x", "deliveries": [{"ü": None, "n": 2.5}]},
    )
    deliveries = [
        Delivery(
            notification=notification,
            recipient=demo["recipient"],
            channel=channel,
            priority="high",
            status=status,
            not_before=not_before,
            escalation_step=step,
            is_fallback=fallback,
        )
        for channel, status, not_before, step, fallback in (
            ("email", DeliveryStatus.SCHEDULED, LATER, 2, False),
            ("sms", "queued", dt.datetime(2030, 1, 2, 3, 4), None, True),  # noqa: DTZ001 - naive
        )
    ]
    events = [DeliveryEvent(delivery=d, status=d.status, detail="accepted") for d in deliveries]

    with pytest.warns(RuntimeWarning, match="naive datetime"):
        _assert_same_values(Delivery, deliveries)
    _assert_same_values(Notification, [notification])
    _assert_same_values(DeliveryEvent, events)


class _Recorder:
    """Wraps `create._insert_sql`: every INSERT the service makes is checked against Django's
    preparation of the same rows, and counted by model."""

    def __init__(self) -> None:
        self.real = create._insert_sql
        self.rows: dict[str, int] = {}

    def __call__(self, model: type[models.Model], rows: Sequence[models.Model]) -> Any:
        sql, params = self.real(model, rows)
        _assert_stamped(model, rows)  # before Django's preparation below stamps them itself
        shape = _insert_shape(model, connection.alias)
        assert shape is not None
        expected = _djangos(model, rows)
        if len(rows) == 1:
            assert sql == shape.one_row
            assert _typed(params) == _typed(expected[0]), model.__name__
        else:
            assert sql == shape.many_rows
            assert params == [_json_rows(shape.columns, expected)], model.__name__
        self.rows[model.__name__] = self.rows.get(model.__name__, 0) + len(rows)
        return sql, params


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, frozen: dt.datetime) -> _Recorder:
    recording = _Recorder()
    monkeypatch.setattr(create, "_insert_sql", recording)
    return recording


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "inserted"),
    [
        ({}, {"Notification": 1, "Delivery": 2, "DeliveryEvent": 2}),
        (
            {"recipients": ["user-1", "user-2", "nobody"], "channels": ["email", "sms", "push"]},
            {"Notification": 1, "Delivery": 6, "DeliveryEvent": 6},
        ),
        ({"send_at": "+1d"}, {"Notification": 1, "Delivery": 2, "DeliveryEvent": 2}),
        ({"idempotency_key": "k-1"}, {"Notification": 1, "Delivery": 2, "DeliveryEvent": 2}),
        (
            {"priority": "high", "category": "orders", "fallback": ["inapp"]},
            {"Notification": 1, "Delivery": 2, "DeliveryEvent": 2},
        ),
        (
            {"escalation": [{"after": "1h", "channels": ["push"], "unless": "read"}]},
            {"Notification": 1, "Delivery": 3, "DeliveryEvent": 3},
        ),
        (
            {"throttle": {"limit": 5, "window": "1h", "key": "{{ order_id }}"}},
            {"Notification": 1, "Delivery": 2, "DeliveryEvent": 2},
        ),
        (
            {"digest": {"window": "5m", "key": "{{ order_id }}"}},
            {"Notification": 1, "Delivery": 2, "DeliveryEvent": 2},
        ),
        (
            {"channels": ["email"], "send_at": "best_time", "best_time_holdout": 50},
            {"Notification": 1, "Delivery": 1, "DeliveryEvent": 1},
        ),
    ],
    ids=[
        "plain",
        "recipients-channels-unknown",
        "scheduled",
        "idempotency-key",
        "priority-category-fallback",
        "escalation",
        "throttle",
        "digest",
        "best-time-ab",
    ],
)
def test_every_insert_of_a_post_writes_djangos_values(
    api: APIClient,
    demo: dict[str, Any],
    recorder: _Recorder,
    frozen: dt.datetime,
    extra: dict[str, Any],
    inserted: dict[str, int],
) -> None:
    RecipientFactory(client=demo["client"], external_id="user-2")
    if extra.get("send_at") == "+1d":
        extra = {**extra, "send_at": (frozen + dt.timedelta(days=1)).isoformat()}
    body: dict[str, Any] = {
        "recipient": "user-1",
        "template": "order_shipped",
        "variables": {"order_id": "A-1", "nested": {"ü": [1, None, 2.5, True]}},
        "channels": ["email", "sms"],
        **extra,
    }
    if "recipients" in body:
        del body["recipient"]

    response = api.post(URL, body, format="json")

    assert response.status_code == 202, response.content
    assert recorder.rows == inserted
    assert Delivery.objects.count() == inserted["Delivery"]


@pytest.mark.django_db
def test_a_topics_inserts_write_djangos_values(
    api: APIClient, demo: dict[str, Any], recorder: _Recorder
) -> None:
    topic = TopicFactory(client=demo["client"], key="order-1-watchers")
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])
    SubscriptionFactory(topic=topic, recipient__client=demo["client"], recipient__external_id="b")
    body = {
        "topic": "order-1-watchers",
        "template": "order_shipped",
        "variables": {"order_id": "A-1"},
        "channels": ["email"],
    }

    response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    notification_id = response.json()["id"]
    fan_out_chunk(notification_id=notification_id)

    assert recorder.rows == {"Notification": 1, "Delivery": 2, "DeliveryEvent": 2}
