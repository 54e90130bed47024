"""Escalation steps: `scheduled` at creation with their timeline, released by the release job
after their delay unless an earlier delivery met `unless` (then `cancelled`, reason `engaged`),
stood down at once by an in-app read or a provider's open, cancelled by the cancel endpoint,
and bad steps are 400s naming the step and field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.metrics import ESCALATION_STEPS
from apps.deliveries.lifecycle import delivery_report
from apps.deliveries.maintenance import deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.inbox.models import InboxMessage
from apps.inbox.services import inbox_message_read
from tests.support.queues import queued_delivery_ids

pytestmark = [pytest.mark.django_db(transaction=True)]

URL = "/api/v1/notifications"
STEPS = [
    {"after": "30m", "channels": ["email"], "unless": "read"},
    {"after": "2h", "channels": ["sms"], "unless": "read"},
]
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["inapp"],
    "escalation": STEPS,
}


def create(api: APIClient, **extra: Any) -> dict[str, Any]:
    response = api.post(URL, {**BODY, **extra}, format="json")
    assert response.status_code == 202, response.content
    return dict(response.json())


def by_channel(notification_id: str) -> dict[str, Delivery]:
    return {d.channel: d for d in Delivery.objects.filter(notification_id=notification_id)}


def steps_count(channel: str, outcome: str) -> float:
    return float(ESCALATION_STEPS.labels(channel=channel, outcome=outcome)._value.get())


def test_steps_are_scheduled_deliveries_with_their_delay_and_timeline(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    before = timezone.now()
    body = create(api)

    rows = by_channel(body["id"])
    assert [(d["channel"], d["status"]) for d in body["deliveries"]] == [
        ("inapp", "queued"),
        ("email", "scheduled"),
        ("sms", "scheduled"),
    ]
    email, sms = rows["email"], rows["sms"]
    assert (email.escalation_step, sms.escalation_step, rows["inapp"].escalation_step) == (
        1,
        2,
        None,
    )
    assert email.not_before is not None
    assert sms.not_before is not None
    assert dt.timedelta(minutes=30) <= email.not_before - before < dt.timedelta(minutes=31)
    assert dt.timedelta(hours=2) <= sms.not_before - before < dt.timedelta(hours=2, minutes=1)
    assert list(email.events.values_list("status", "detail")) == [
        ("scheduled", "escalation step 1: after 30m unless read; accepted")
    ]
    detail = api.get(f"{URL}/{body['id']}").json()
    assert detail["escalation"] == STEPS
    assert sorted(d["escalation_step"] or 0 for d in detail["deliveries"]) == [0, 1, 2]
    # only the in-app message is waiting in the broker
    assert list(queued_delivery_ids(clean_redis).values()) == [[str(rows["inapp"].id)]]


def test_a_step_not_engaged_is_released_after_its_delay_only(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    body = create(api)
    rows = by_channel(body["id"])
    released_before = steps_count("email", "released")

    assert deliveries_release_due(now=timezone.now() + dt.timedelta(minutes=29)) == 0
    assert deliveries_release_due(now=timezone.now() + dt.timedelta(minutes=31)) == 1

    rows = by_channel(body["id"])
    assert (rows["email"].status, rows["sms"].status) == ("queued", "scheduled")
    assert rows["email"].events.last().detail == "released: escalation step 1 due, not engaged"  # type: ignore[union-attr]
    assert str(rows["email"].id) in queued_delivery_ids(clean_redis).get("email.normal", [])
    assert steps_count("email", "released") == released_before + 1


def test_reading_the_inapp_message_stands_the_pending_steps_down(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given the in-app message was sent and stored in the inbox
    body = create(api)
    rows = by_channel(body["id"])
    inapp = rows["inapp"]
    Delivery.objects.filter(pk=inapp.pk).update(status=DeliveryStatus.SENT)  # as a worker would
    message = InboxMessage.objects.create(
        recipient=inapp.recipient, delivery=inapp, title="t", body="b"
    )
    engaged_before = steps_count("email", "engaged")

    # When the recipient reads it
    inbox_message_read(recipient=inapp.recipient, message_id=message.id)

    # Then both steps are cancelled, reason engaged, and nothing is released later
    rows = by_channel(body["id"])
    assert rows["inapp"].status == "read"
    for channel in ("email", "sms"):
        assert (rows[channel].status, rows[channel].reason) == ("cancelled", "engaged")
        assert rows[channel].events.last().detail == "engaged: read"  # type: ignore[union-attr]
    assert steps_count("email", "engaged") == engaged_before + 1
    assert deliveries_release_due(now=timezone.now() + dt.timedelta(hours=3)) == 0


def test_a_read_while_the_inapp_delivery_is_sending_stands_the_steps_down(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given the in-app message stored in the inbox while its delivery is still `sending`
    body = create(api)
    inapp = by_channel(body["id"])["inapp"]
    Delivery.objects.filter(pk=inapp.pk).update(status=DeliveryStatus.SENDING)
    message = InboxMessage.objects.create(
        recipient=inapp.recipient, delivery=inapp, title="t", body="b"
    )

    # When the recipient reads it before the worker marks it sent
    inbox_message_read(recipient=inapp.recipient, message_id=message.id)

    # Then the steps stand down all the same, and nothing is released later
    rows = by_channel(body["id"])
    for channel in ("email", "sms"):
        assert (rows[channel].status, rows[channel].reason) == ("cancelled", "engaged")
    assert deliveries_release_due(now=timezone.now() + dt.timedelta(hours=3)) == 0
    queued = [pk for ids in queued_delivery_ids(clean_redis).values() for pk in ids]
    assert queued == [str(inapp.id)]  # the in-app message's own send only


def test_with_two_recipients_a_read_stands_down_only_the_readers_steps(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given two recipients escalated together, both in-app messages sent
    from tests.factories import RecipientFactory

    RecipientFactory(client=demo["recipient"].client, external_id="user-2")  # type: ignore[attr-defined]
    both = {
        **{k: v for k, v in BODY.items() if k != "recipient"},
        "recipients": ["user-1", "user-2"],
    }
    response = api.post(URL, both, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    rows = Delivery.objects.filter(notification_id=body["id"])
    rows.filter(channel="inapp").update(status=DeliveryStatus.SENT)  # as a worker would
    reader = rows.get(channel="inapp", recipient__external_id="user-1")
    message = InboxMessage.objects.create(
        recipient=reader.recipient, delivery=reader, title="t", body="b"
    )

    # When only the first reads hers
    inbox_message_read(recipient=reader.recipient, message_id=message.id)

    # Then her steps stand down, the other's stay scheduled and are released when due
    steps = {
        (d.recipient.external_id, d.channel): d.status
        for d in rows.exclude(channel="inapp").select_related("recipient")
    }
    assert steps == {
        ("user-1", "email"): "cancelled",
        ("user-1", "sms"): "cancelled",
        ("user-2", "email"): "scheduled",
        ("user-2", "sms"): "scheduled",
    }
    assert deliveries_release_due(now=timezone.now() + dt.timedelta(hours=3)) == 2


def test_an_opened_report_stands_the_later_steps_down(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given the email step was released and sent
    body = create(api)
    deliveries_release_due(now=timezone.now() + dt.timedelta(minutes=31))
    email = by_channel(body["id"])["email"]
    Delivery.objects.filter(pk=email.pk).update(status=DeliveryStatus.SENT)

    # When the provider reports it opened
    assert delivery_report(delivery=email, status="opened", detail="opened") is True

    # Then the SMS step is stood down
    sms = by_channel(body["id"])["sms"]
    assert (sms.status, sms.reason) == ("cancelled", "engaged")


def test_a_step_whose_unless_an_earlier_delivery_met_is_stood_down_when_due(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a step that waits on `delivered`, and the in-app delivery already delivered
    body = create(api, escalation=[{"after": "1m", "channels": ["email"], "unless": "delivered"}])
    inapp = by_channel(body["id"])["inapp"]
    Delivery.objects.filter(pk=inapp.pk).update(status=DeliveryStatus.DELIVERED)

    # When the step falls due
    deliveries_release_due(now=timezone.now() + dt.timedelta(minutes=2))

    # Then it is cancelled (engaged), not queued
    email = by_channel(body["id"])["email"]
    assert (email.status, email.reason) == ("cancelled", "engaged")
    assert email.events.last().detail == "engaged: not sent"  # type: ignore[union-attr]
    assert "email.normal" not in queued_delivery_ids(clean_redis)


def test_a_delivered_report_does_not_stand_down_a_step_waiting_on_read(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    body = create(api, channels=["push"])
    push = by_channel(body["id"])["push"]
    Delivery.objects.filter(pk=push.pk).update(status=DeliveryStatus.SENT)

    delivery_report(delivery=push, status="delivered", detail="delivered")

    assert by_channel(body["id"])["email"].status == "scheduled"


def test_cancel_cancels_the_scheduled_steps(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    body = create(api)

    response = api.post(f"{URL}/{body['id']}/cancel")

    assert response.status_code == 200
    assert {d["channel"]: d["status"] for d in response.json()["deliveries"]} == {
        "inapp": "cancelled",
        "email": "cancelled",
        "sms": "cancelled",
    }
    assert deliveries_release_due(now=timezone.now() + dt.timedelta(hours=3)) == 0


@pytest.mark.parametrize(
    ("escalation", "field"),
    [
        ([{"after": "soon", "channels": ["email"]}], "escalation[0].after"),
        ([{"after": "1m", "channels": []}], "escalation[0].channels"),
        ([{"after": "1m", "channels": ["email"], "unless": "liked"}], "escalation[0].unless"),
        ([{"after": "1m", "channels": ["inapp"]}], "escalation[0].channels"),  # already sent now
        (
            [{"after": "2h", "channels": ["email"]}, {"after": "30m", "channels": ["sms"]}],
            "escalation[1].after",
        ),  # out of order
        (
            [{"after": "1h", "channels": ["email"]}, {"after": "60m", "channels": ["sms"]}],
            "escalation[1].after",
        ),  # at the same time
        ({"after": "1m"}, "escalation"),
        ("30m", "escalation"),
    ],
)
def test_bad_escalations_are_400_naming_the_step_and_field(
    api: APIClient, demo: dict[str, object], escalation: Any, field: str
) -> None:
    response = api.post(URL, {**BODY, "escalation": escalation}, format="json")

    assert response.status_code == 400, response.content
    fields = response.json()["fields"]
    found = fields.get("escalation", fields)
    assert field in found or field in fields, fields
    assert Notification.objects.count() == 0


def test_a_send_at_with_no_time_left_after_it_for_the_steps_is_a_400(
    api: APIClient, demo: dict[str, object]
) -> None:
    response = api.post(URL, {**BODY, "send_at": "9999-12-31T23:59:59Z"}, format="json")

    assert response.status_code == 400, response.content
    assert "send_at" in response.json()["fields"]
    assert Notification.objects.count() == 0
