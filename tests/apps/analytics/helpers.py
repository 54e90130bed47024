"""Timelines written as the lifecycle writes them, at chosen times (`at` is auto_now_add)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.deliveries.models import Delivery, DeliveryEvent
from tests.factories import DeliveryFactory

T0 = dt.datetime(2026, 3, 2, 10, 20, tzinfo=dt.UTC)


def delivery(*, created: dt.datetime = T0, **fields: Any) -> Delivery:
    d: Delivery = DeliveryFactory(**fields)
    Delivery.objects.filter(pk=d.pk).update(created_at=created)
    d.refresh_from_db()
    return d


def event(d: Delivery, status: str, at: dt.datetime, detail: str = "") -> DeliveryEvent:
    e = DeliveryEvent.objects.create(delivery=d, status=status, detail=detail)
    DeliveryEvent.objects.filter(pk=e.pk).update(at=at)
    return e


def seconds(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)
