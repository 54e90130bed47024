"""What is never digested although its template declares a digest, decided once per notification:
one with escalation steps (a digested item is never read, so its steps would always go out; a
request's own `digest` object beside `escalation` is a 400), and one scheduled with `send_at`
later than its acceptance (for listed recipients and every chunk of a topic's fan-out alike)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.fanout import Step, fan_out_chunk
from apps.deliveries.models import Delivery, DeliveryStatus, Digest, FanOut, Notification
from apps.inbox.models import InboxMessage
from apps.inbox.services import inbox_message_read
from apps.templates.models import Template
from tests.apps.deliveries.test_notifications_api import assert_error_shape
from tests.factories import SubscriptionFactory, TopicFactory

pytestmark = [pytest.mark.django_db(transaction=True)]

URL = "/api/v1/notifications"
STEPS = [{"after": "30m", "channels": ["email"], "unless": "read"}]
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["inapp"],
}
TOPIC = "order-1-watchers"


@pytest.fixture
def digested_template(demo: dict[str, Any]) -> Template:
    """The demo's order_shipped template, declaring a one-minute digest."""
    template = demo["template"]
    assert isinstance(template, Template)
    template.digest = {"window": "1m"}
    template.save()
    return template


@pytest.fixture
def topic(demo: dict[str, Any]) -> Any:
    """A topic followed by the demo recipient, a, b and c."""
    topic = TopicFactory(client=demo["client"], key=TOPIC)
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])
    for ext in ("a", "b", "c"):
        SubscriptionFactory(
            topic=topic, recipient__client=demo["client"], recipient__external_id=ext
        )
    return topic


def statuses(notification_id: str) -> dict[tuple[str, str], str]:
    return {
        (d.recipient.external_id, d.channel): d.status
        for d in Delivery.objects.filter(notification_id=notification_id).select_related(
            "recipient"
        )
    }


def test_with_escalation_steps_the_deliveries_go_out_on_their_own_and_a_read_stands_them_down(
    api: APIClient, digested_template: Template, clean_redis: redis.Redis
) -> None:
    # Given a template declaring a digest, notified with an escalation step
    response = api.post(URL, {**BODY, "escalation": STEPS}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()

    # Then the in-app delivery is queued on its own (no window opened), the step scheduled
    assert [(d["channel"], d["status"]) for d in body["deliveries"]] == [
        ("inapp", "queued"),
        ("email", "scheduled"),
    ]
    assert not Digest.objects.exists()
    assert Notification.objects.get(id=body["id"]).digest is None

    # And when the recipient reads the in-app message, the step stands down
    inapp = Delivery.objects.get(notification_id=body["id"], channel="inapp")
    Delivery.objects.filter(pk=inapp.pk).update(status=DeliveryStatus.SENT)  # as a worker would
    message = InboxMessage.objects.create(
        recipient=inapp.recipient, delivery=inapp, title="t", body="b"
    )
    inbox_message_read(recipient=inapp.recipient, message_id=message.id)
    step = Delivery.objects.get(notification_id=body["id"], channel="email")
    assert (step.status, step.reason) == ("cancelled", "engaged")


def test_a_digest_object_with_escalation_is_a_400_and_creates_nothing(
    api: APIClient, digested_template: Template, clean_redis: redis.Redis
) -> None:
    listed = {**BODY, "digest": {"window": "5m"}, "escalation": STEPS}
    to_topic = {k: v for k, v in listed.items() if k != "recipient"} | {"topic": TOPIC}
    for body in (listed, to_topic):
        response = api.post(URL, body, format="json")

        assert response.status_code == 400, response.content
        assert_error_shape(response.json(), "invalid")
        assert response.json()["fields"] == {"digest": ["not with `escalation` (drop one of them)"]}
    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()


def test_digest_false_with_escalation_is_accepted(
    api: APIClient, digested_template: Template, clean_redis: redis.Redis
) -> None:
    response = api.post(URL, {**BODY, "digest": False, "escalation": STEPS}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["deliveries"][0]["status"] == "queued"


def test_a_topic_with_escalation_is_not_digested_in_any_chunk(
    api: APIClient, digested_template: Template, topic: Any, clean_redis: redis.Redis
) -> None:
    body = {**BODY, "topic": TOPIC, "escalation": STEPS}
    del body["recipient"]
    response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    notification_id = response.json()["id"]

    while fan_out_chunk(notification_id=notification_id) is not Step.DONE:
        pass

    found = statuses(notification_id)
    assert {s for (_, channel), s in found.items() if channel == "inapp"} == {"queued"}
    assert {s for (_, channel), s in found.items() if channel == "email"} == {"scheduled"}
    assert len(found) == 8
    assert not Digest.objects.exists()


def test_a_notification_scheduled_with_send_at_is_not_digested(
    api: APIClient, digested_template: Template, clean_redis: redis.Redis
) -> None:
    send_at = (timezone.now() + dt.timedelta(hours=1)).isoformat()

    response = api.post(URL, {**BODY, "send_at": send_at}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["deliveries"][0]["status"] == "scheduled"
    assert Notification.objects.get(id=response.json()["id"]).digest is None
    assert not Digest.objects.exists()


@override_settings(FANOUT_CHUNK_SIZE=2)
def test_a_scheduled_topic_notification_is_not_digested_by_chunks_run_after_its_send_at(
    api: APIClient, digested_template: Template, topic: Any, clean_redis: redis.Redis
) -> None:
    # Given a topic notification accepted with send_at in an hour
    send_at = timezone.now() + dt.timedelta(hours=1)
    body = {**BODY, "topic": TOPIC, "send_at": send_at.isoformat()}
    del body["recipient"]
    response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    notification_id = response.json()["id"]

    # When its first chunk runs before send_at, and the rest only after it (a backlog)
    assert fan_out_chunk(notification_id=notification_id) is Step.MORE
    past = timezone.now() - dt.timedelta(seconds=1)
    Notification.objects.filter(id=notification_id).update(
        send_at=past, created_at=past - dt.timedelta(hours=1)
    )
    while fan_out_chunk(notification_id=notification_id) is not Step.DONE:
        pass

    # Then no chunk digested anything: the first two wait for send_at, the later two go now
    found = statuses(notification_id)
    assert sorted(found.values()) == ["queued", "queued", "scheduled", "scheduled"]
    assert FanOut.objects.get().created == 4
    assert not Digest.objects.exists()
