"""`"send_at": "best_time"` tests: a recipient's engagement history at chosen times, and the
POST."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.models import DeliveryEvent, DeliveryStatus
from apps.recipients.models import Recipient
from tests.factories import DeliveryFactory, NotificationFactory

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["email"],
}
KOLKATA = "Asia/Kolkata"  # UTC+05:30, no DST: a local hour is not a UTC hour


def seed(recipient: Recipient, at: list[dt.datetime], status: str = "opened") -> None:
    """Engagement events of `recipient` at these times (one delivery of an earlier
    notification, sent a minute before the first of them)."""
    delivery = DeliveryFactory(
        notification=NotificationFactory(client=recipient.client),
        recipient=recipient,
        status=DeliveryStatus.SENT,
        sent_at=min(at) - dt.timedelta(minutes=1),
    )
    for when in at:
        event = DeliveryEvent.objects.create(delivery=delivery, status=status)
        DeliveryEvent.objects.filter(pk=event.pk).update(at=when)  # `at` is auto_now_add


def local_days_ago(zone: str, hour: int, days: list[int], minute: int = 20) -> list[dt.datetime]:
    """`hour`:`minute` local time, so many days ago."""
    today = timezone.now().astimezone(ZoneInfo(zone)).date()
    return [
        dt.datetime.combine(today - dt.timedelta(days=d), dt.time(hour, minute), ZoneInfo(zone))
        for d in days
    ]


def post(api: APIClient, **extra: Any) -> dict[str, Any]:
    response = api.post(URL, {**BODY, **extra}, format="json")
    assert response.status_code == 202, response.content
    return dict(response.json())
