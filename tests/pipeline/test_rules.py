"""Quiet hours and daily caps with a real worker: applied at creation, re-checked just before
sending, in the recipient's timezone; `critical` bypasses both."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.maintenance import deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.recipients.models import Recipient
from tests.factories import PreferenceFactory
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]


def post_email(api: APIClient, priority: str = "normal", order: str = "A-1") -> dict[str, str]:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": order},
            "channels": ["email"],
            "priority": priority,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return dict(response.json()["deliveries"][0])


def status_is(delivery_id: str, status: str) -> bool:
    return Delivery.objects.filter(id=delivery_id, status=status).exists()


def quiet_window_around_now(
    recipient: Recipient, tz: str, ends_in: dt.timedelta = dt.timedelta(hours=2)
) -> dt.datetime:
    """Quiet hours from an hour ago to `ends_in` ahead, local time; returns the end (UTC)."""
    local = timezone.now().astimezone(ZoneInfo(tz))
    start = (local - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    end = (local + ends_in).replace(microsecond=0)
    PreferenceFactory(recipient=recipient, quiet_start=start.time(), quiet_end=end.time())
    return end.astimezone(dt.UTC)


def test_quiet_hours_defer_to_the_local_window_end_and_critical_is_not_deferred(
    worker: Worker, sendgrid: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    # Given a recipient in Tokyo inside their quiet hours
    recipient = demo["recipient"]
    assert isinstance(recipient, Recipient)
    recipient.timezone = "Asia/Tokyo"
    recipient.save()
    # (the window ends in a few seconds, so that the test can see it end)
    window_end = quiet_window_around_now(recipient, "Asia/Tokyo", dt.timedelta(seconds=10))

    # When a normal and a critical email are posted
    normal = post_email(api, "normal", order="N-1")
    critical = post_email(api, "critical", order="C-1")

    # Then the normal one waits for the window's end (in Tokyo), the critical one goes now
    assert (normal["status"], normal["reason"]) == ("deferred", "quiet hours")
    assert Delivery.objects.get(id=normal["id"]).not_before == window_end
    wait_until(lambda: status_is(critical["id"], DeliveryStatus.SENT), timeout=30)
    time.sleep(1)
    assert [r["key"] for r in sendgrid.accepted()] == [critical["id"]]

    # And when the window has ended, the release job (beat) queues it and it is sent
    assert deliveries_release_due() == 0
    time.sleep(max((window_end - timezone.now()).total_seconds(), 0) + 0.2)
    assert deliveries_release_due() == 1
    wait_until(lambda: status_is(normal["id"], DeliveryStatus.SENT), timeout=30)
    assert sendgrid.accepted()[-1]["body"]["subject"] == "Order N-1 shipped"


def test_quiet_hours_that_began_after_creation_defer_at_send_time(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Given an email queued while the recipient had no quiet hours (no worker yet)
    delivery = post_email(api)
    assert delivery["status"] == "queued"

    # When quiet hours start before a worker picks it up
    recipient = demo["recipient"]
    assert isinstance(recipient, Recipient)
    window_end = quiet_window_around_now(recipient, "UTC")
    worker_factory()

    # Then the re-check just before sending defers it, without an attempt or a provider call
    wait_until(lambda: status_is(delivery["id"], DeliveryStatus.DEFERRED), timeout=30)
    row = Delivery.objects.get(id=delivery["id"])
    assert (row.reason, row.not_before, row.attempts) == ("quiet hours", window_end, 0)
    assert not row.attempt_rows.exists()
    assert sendgrid.requests() == []


def test_daily_cap_defers_to_local_midnight_and_critical_bypasses_it(
    worker: Worker, sendgrid: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    # Given a recipient in New York allowed two notifications a day
    recipient = demo["recipient"]
    assert isinstance(recipient, Recipient)
    recipient.timezone = "America/New_York"
    recipient.save()
    PreferenceFactory(recipient=recipient, daily_limit=2)
    sent = [post_email(api, order=f"A-{n}")["id"] for n in range(2)]
    for delivery_id in sent:
        wait_until(lambda d=delivery_id: status_is(d, DeliveryStatus.SENT), timeout=30)

    # When a third and a critical one are posted the same day
    third = post_email(api, order="A-3")
    critical = post_email(api, "critical", order="C-1")

    # Then the third waits for midnight in New York; the critical one is sent
    local = timezone.now().astimezone(ZoneInfo("America/New_York"))
    midnight = dt.datetime.combine(
        local.date() + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo("America/New_York")
    )
    assert (third["status"], third["reason"]) == ("deferred", "daily limit reached")
    assert Delivery.objects.get(id=third["id"]).not_before == midnight
    wait_until(lambda: status_is(critical["id"], DeliveryStatus.SENT), timeout=30)
    assert sorted(r["key"] for r in sendgrid.accepted()) == sorted([*sent, critical["id"]])


def test_daily_cap_is_rechecked_before_sending(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Given a cap of one a day and two emails queued before any was sent
    recipient = demo["recipient"]
    assert isinstance(recipient, Recipient)
    PreferenceFactory(recipient=recipient, daily_limit=1)
    first, second = post_email(api, order="A-1"), post_email(api, order="A-2")
    assert first["status"] == second["status"] == "queued"

    # When one worker (one at a time) sends them
    worker_factory(concurrency=1)

    # Then one is sent and the other deferred by the re-check, with no attempt used
    ids = [first["id"], second["id"]]
    wait_until(
        lambda: (
            sorted(Delivery.objects.filter(id__in=ids).values_list("status", flat=True))
            == [DeliveryStatus.DEFERRED, DeliveryStatus.SENT]
        ),
        timeout=30,
    )
    deferred = Delivery.objects.get(id__in=ids, status=DeliveryStatus.DEFERRED)
    assert (deferred.reason, deferred.attempts) == ("daily limit reached", 0)
    assert len(sendgrid.accepted()) == 1
