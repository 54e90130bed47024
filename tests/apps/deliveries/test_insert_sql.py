"""The notification insert writes what Django's own insert compiler writes: the statement built
once per model (one row: Django's `VALUES`; several: one JSON parameter read back by
`json_populate_recordset`) leaves exactly the rows Django's statement leaves for the same
objects, and a value JSON cannot carry takes Django's compiler itself."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.bound import bound_cursor
from apps.deliveries.lifecycle import create
from apps.deliveries.lifecycle.create import _insert_sql, _insert_sql_by_django, _json_rows
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus, Notification
from tests.factories import RecipientFactory, TemplateFactory

NOW = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
LATER = dt.datetime(2030, 1, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(timezone, "now", lambda: NOW)  # auto_now(_add) values: the same twice
    template = TemplateFactory()
    recipient = RecipientFactory(client=template.client)
    notification = Notification(
        client=template.client,
        template=template,
        template_version=template.versions.get(),
        variables={"order_id": "A-1", "nested": {"ü": [1, None, 2.5, True]}, "q": 'say "hi"\\'},
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
            status=status,
            reason=reason,
            not_before=not_before,
            escalation_step=step,
            push_accepted=accepted,
        )
        for channel, status, reason, not_before, step, accepted in (
            ("email", DeliveryStatus.QUEUED, "", None, None, {}),
            ("sms", DeliveryStatus.SCHEDULED, "line\nbreak, 'quoted' \"é\" 😀", LATER, 2, {}),
            ("push", DeliveryStatus.QUEUED, "", None, None, {'tok"en': "id-ü", "n": None}),
        )
    ]
    events = [DeliveryEvent(delivery=d, status=d.status, detail=d.reason) for d in deliveries]
    return {"notification": [notification], "deliveries": deliveries, "events": events}


def _written_by(
    model: type[models.Model],
    objs: list[Any],
    build: Callable[[type[models.Model], list[Any]], tuple[str, list[Any]]],
) -> list[dict[str, Any]]:
    """The rows of `model` after running the statement `build` makes (in a savepoint rolled
    back after: the foreign keys are checked at commit, so a table alone can be written)."""
    sql, params = build(model, objs)
    savepoint = transaction.savepoint()
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
    written = [
        {k: v for k, v in row.items() if not (model is DeliveryEvent and k == "id")}
        for row in model.objects.order_by(
            *(["delivery_id"] if model is DeliveryEvent else ["pk"])
        ).values()
    ]
    transaction.savepoint_rollback(savepoint)
    return written


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 2, 3])
def test_our_insert_writes_the_rows_djangos_compiler_writes(
    rows: dict[str, Any], count: int
) -> None:
    for model, objs in (
        (Notification, rows["notification"]),
        (Delivery, rows["deliveries"][:count]),
        (DeliveryEvent, rows["events"][:count]),
    ):
        ours = _written_by(model, objs, _insert_sql)
        django = _written_by(model, objs, _insert_sql_by_django)

        assert len(ours) == len(objs)
        assert ours == django, model.__name__
    assert _insert_sql(Delivery, rows["deliveries"])[0].endswith(
        'FROM json_populate_recordset(NULL::"deliveries_delivery", %s::json)'
    )


@pytest.mark.django_db
def test_a_value_json_cannot_carry_takes_djangos_compiler(
    rows: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON field with an encoder of its own: its output is the encoder's, not ours."""
    field = Delivery._meta.get_field("push_accepted")
    monkeypatch.setattr(field, "encoder", DjangoJSONEncoder)
    deliveries = rows["deliveries"]
    deliveries[2].push_accepted = {"at": NOW}  # only DjangoJSONEncoder writes a datetime
    calls = _recording(monkeypatch)

    ours = _written_by(Delivery, deliveries, _insert_sql)

    assert calls == [Delivery]
    [push] = [row for row in ours if row["channel"] == "push"]
    assert push["push_accepted"] == {"at": "2030-01-02T03:04:05.678Z"}


def test_json_rows_refuse_what_they_cannot_write_exactly() -> None:
    at = dt.datetime(2030, 1, 2, tzinfo=dt.UTC)
    written = _json_rows(["a", "b"], [[uuid.UUID(int=1), at], [None, at]])
    assert json.loads(written or "") == [
        {"a": "00000000-0000-0000-0000-000000000001", "b": "2030-01-02T00:00:00+00:00"},
        {"a": None, "b": "2030-01-02T00:00:00+00:00"},
    ]
    assert _json_rows(["a"], [[dt.datetime(2030, 1, 2)]]) is None  # noqa: DTZ001 - naive: no
    assert _json_rows(["a"], [[b"bytes"]]) is None


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    real = create._insert_sql_by_django

    def recording(model: Any, objs: Any) -> Any:
        calls.append(model)
        return real(model, objs)

    monkeypatch.setattr(create, "_insert_sql_by_django", recording)
    return calls


@pytest.mark.django_db
def test_a_row_holding_an_expression_takes_djangos_compiler(
    rows: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    [notification] = rows["notification"]
    notification.recipient_count = F("recipient_count")  # nothing this service writes; but if
    calls = _recording(monkeypatch)
    with pytest.raises(Exception):  # noqa: B017, PT011 - Django refuses F() in an INSERT itself
        _insert_sql(Notification, [notification])
    assert calls == [Notification]
    assert connection.vendor == "postgresql"
