"""The notification insert's SQL is Django's own: the statement built once per model and the
values prepared per call are exactly what Django's insert compiler writes for the same rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone
from psycopg.types.json import Jsonb

from apps.deliveries.lifecycle import create
from apps.deliveries.lifecycle.create import _insert_sql, _insert_sql_by_django
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus, Notification
from tests.factories import RecipientFactory, TemplateFactory

NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(timezone, "now", lambda: NOW)  # auto_now(_add) values: the same twice
    template = TemplateFactory()
    recipient = RecipientFactory(client=template.client)
    notification = Notification(
        client=template.client,
        template=template,
        template_version=template.versions.get(),
        variables={"order_id": "A-1", "nested": {"ü": [1, None]}},
        channels=["email", "sms"],
        priority="high",
        recipient_count=1,
        throttle=None,
        response={"id": "x"},
    )
    deliveries = [
        Delivery(
            notification=notification,
            recipient=recipient,
            channel=channel,
            priority="high",
            status=DeliveryStatus.QUEUED,
            not_before=NOW if channel == "sms" else None,
        )
        for channel in ("email", "sms", "push")
    ]
    events = [DeliveryEvent(delivery=d, status=d.status, detail="accepted") for d in deliveries]
    return {"notification": [notification], "deliveries": deliveries, "events": events}


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_insert_is_what_djangos_compiler_writes(rows: dict[str, Any], count: int) -> None:
    for model, objs in (
        (Notification, rows["notification"]),
        (Delivery, rows["deliveries"][:count]),
        (DeliveryEvent, rows["events"][:count]),
    ):
        ours, django = _insert_sql(model, objs), _insert_sql_by_django(model, objs)
        assert ours[0] == django[0], model.__name__
        assert _comparable(ours[1]) == _comparable(django[1]), model.__name__


def _comparable(value: Any) -> Any:
    """psycopg's wrappers (Jsonb, Int4) do not compare equal: their type and wrapped value."""
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    if isinstance(value, Jsonb):
        return ("jsonb", value.obj)
    if isinstance(value, int) and type(value) is not int and not isinstance(value, bool):
        return (type(value).__name__, int(value))
    return value


@pytest.mark.django_db
def test_a_row_holding_an_expression_takes_djangos_compiler(
    rows: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    [notification] = rows["notification"]
    notification.recipient_count = F("recipient_count")  # nothing this service writes; but if
    calls: list[object] = []
    real = create._insert_sql_by_django

    def recording(model: Any, objs: Any) -> Any:
        calls.append(model)
        return real(model, objs)

    monkeypatch.setattr(create, "_insert_sql_by_django", recording)
    with pytest.raises(Exception):  # noqa: B017, PT011 - Django refuses F() in an INSERT itself
        _insert_sql(Notification, [notification])
    assert calls == [Notification]
