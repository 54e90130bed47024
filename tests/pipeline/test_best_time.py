"""`"send_at": "best_time"` with a real worker: a recipient whose best hour is under way is sent
at once; one whose best hour is ahead is `scheduled`, released by the release job when its time
comes and sent, its timeline saying what was chosen."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.maintenance import deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus
from apps.recipients.models import Recipient
from tests.factories import DeliveryFactory, NotificationFactory, RecipientFactory
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]

ZONE = "Asia/Kolkata"


def seed_opens(recipient: Recipient, local_hour: int, days: int) -> None:
    """An open at `local_hour`:20 (the recipient's zone) on each of the last `days` days, of
    one delivery sent before them."""
    delivery = DeliveryFactory(
        notification=NotificationFactory(client=recipient.client),
        recipient=recipient,
        status=DeliveryStatus.OPENED,
        sent_at=timezone.now() - dt.timedelta(days=days + 1),
    )
    today = timezone.now().astimezone(ZoneInfo(ZONE)).date()
    for day in range(1, days + 1):
        at = dt.datetime.combine(today - dt.timedelta(days=day), dt.time(local_hour, 20))
        event = DeliveryEvent.objects.create(delivery=delivery, status=DeliveryStatus.OPENED)
        DeliveryEvent.objects.filter(pk=event.pk).update(at=at.replace(tzinfo=ZoneInfo(ZONE)))


def test_best_time_sends_now_in_the_best_hour_and_releases_a_later_one_at_its_time(
    worker: Worker, sendgrid: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    local = timezone.now().astimezone(ZoneInfo(ZONE))
    if local.minute == 59 and local.second > 45:  # the hour must not turn during the test
        time.sleep(20)
        local = timezone.now().astimezone(ZoneInfo(ZONE))
    # Given one recipient most engaged in the hour under way, another in the next hour
    client = demo["client"]
    now_person = RecipientFactory(client=client, external_id="now", timezone=ZONE)
    later_person = RecipientFactory(client=client, external_id="later", timezone=ZONE)
    seed_opens(now_person, local.hour, 7)
    seed_opens(later_person, (local.hour + 1) % 24, 6)

    # When one request names both
    response = api.post(
        "/api/v1/notifications",
        {
            "recipients": ["now", "later"],
            "template": "order_shipped",
            "variables": {"order_id": "B-1"},
            "channels": ["email"],
            "send_at": "best_time",
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    rows = {
        d.recipient.external_id: d
        for d in Delivery.objects.filter(notification_id=response.json()["id"]).select_related(
            "recipient"
        )
    }

    # Then the first is sent at once by the worker
    first = rows["now"]
    wait_until(
        lambda: Delivery.objects.filter(id=first.id, status=DeliveryStatus.SENT).exists(),
        timeout=30,
    )
    assert first.events.order_by("at", "id").first().detail == (  # type: ignore[union-attr]
        f"best time: {local:%H}:00 {ZONE} (7 engagements in 90 days), sending now"
    )
    # ...and the second waits, scheduled at the start of its best hour
    later = rows["later"]
    next_hour = local.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    assert (later.status, later.not_before) == ("scheduled", next_hour)
    assert later.events.get().detail == (
        f"best time: {next_hour:%H:%M} {ZONE} (6 engagements in 90 days)"
    )
    assert [r["key"] for r in sendgrid.accepted()] == [str(first.id)]

    # When its time comes (brought to two seconds from now: the test does not wait an hour),
    # the release job queues it only then, and the worker sends it
    due = timezone.now() + dt.timedelta(seconds=2)
    Delivery.objects.filter(id=later.id).update(not_before=due)
    assert deliveries_release_due() == 0
    time.sleep(max((due - timezone.now()).total_seconds(), 0) + 0.2)
    assert deliveries_release_due() == 1
    wait_until(
        lambda: Delivery.objects.filter(id=later.id, status=DeliveryStatus.SENT).exists(),
        timeout=30,
    )
    assert [r["key"] for r in sendgrid.accepted()] == [str(first.id), str(later.id)]
    statuses = list(later.events.order_by("at", "id").values_list("status", "detail"))
    assert statuses[:2] == [
        ("scheduled", f"best time: {next_hour:%H:%M} {ZONE} (6 engagements in 90 days)"),
        ("queued", "released: due"),
    ]
