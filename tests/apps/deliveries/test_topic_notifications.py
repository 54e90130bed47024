"""POST /api/v1/notifications with a topic: the 202, validation, idempotency, and the fan-out's
chunks run in-process (preferences, exclude, cancel, backpressure, the resume sweep). The real
worker runs are in tests/pipeline/test_topic_fanout.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import broker
from apps.deliveries.fanout import FAN_OUT_TASK, Step, fan_out_chunk, fan_out_run, fan_outs_resume
from apps.deliveries.models import Delivery, DeliveryStatus, FanOut, Notification
from notifier.queues import MAINTENANCE_QUEUE
from tests.factories import PreferenceFactory, RecipientFactory, SubscriptionFactory, TopicFactory
from tests.support.queues import queued_delivery_ids

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "topic": "order-1-watchers",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["inapp"],
}


@pytest.fixture
def topic(demo: dict[str, Any]) -> Any:
    """A topic of the demo client followed by user-1 (the demo recipient), a, b and c."""
    client = demo["client"]
    topic = TopicFactory(client=client, key="order-1-watchers")
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])
    for ext in ("a", "b", "c"):
        SubscriptionFactory(topic=topic, recipient__client=client, recipient__external_id=ext)
    return topic


def fan_out_messages(client: redis.Redis) -> list[list[Any]]:
    return [
        message["headers"]["argsrepr"]
        for _, message in broker.queued_messages([MAINTENANCE_QUEUE], client=client)
        if message["headers"]["task"] == FAN_OUT_TASK
    ]


@pytest.mark.django_db(transaction=True)
def test_accepted_at_once_with_the_expected_count_and_the_worker_queued(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    response = api.post(URL, {**BODY, "channels": ["inapp", "email"]}, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body == {
        "id": body["id"],
        "status": "accepted",
        "recipients": "fan-out",
        "topic": "order-1-watchers",
        "expected": 8,
    }
    assert Delivery.objects.count() == 0  # the worker creates them
    fan = FanOut.objects.get(notification_id=body["id"])
    assert (fan.expected, fan.created, fan.finished_at) == (8, 0, None)
    assert Notification.objects.get().recipient_count == 4
    assert fan_out_messages(clean_redis) == [f"['{body['id']}']"]


@pytest.mark.django_db
def test_exclude_and_preferences_apply_to_each_subscriber(api: APIClient, topic: Any) -> None:
    PreferenceFactory(
        recipient=topic.subscriptions.get(recipient__external_id="b").recipient,
        channels={"inapp": False},
    )
    body = api.post(URL, {**BODY, "exclude": ["a", "nobody"]}, format="json").json()

    assert body["expected"] == 3
    assert fan_out_chunk(notification_id=body["id"]) is Step.MORE  # an empty chunk ends it
    assert fan_out_chunk(notification_id=body["id"]) is Step.DONE

    rows = dict(Delivery.objects.values_list("recipient__external_id", "status"))
    assert rows == {
        "user-1": DeliveryStatus.QUEUED,
        "b": DeliveryStatus.SKIPPED,  # opted out of in-app
        "c": DeliveryStatus.QUEUED,
    }
    fan = FanOut.objects.get()
    assert (fan.created, fan.finished_at is not None) == (3, True)
    detail = api.get(f"{URL}/{body['id']}").json()
    assert detail["fan_out"] == {
        "topic": "order-1-watchers",
        "exclude": ["a", "nobody"],
        "expected": 3,
        "created": 3,
        "done": True,
        "finished_at": detail["fan_out"]["finished_at"],
    }


@pytest.mark.django_db
@override_settings(FANOUT_CHUNK_SIZE=2)
def test_chunks_move_a_cursor_and_never_repeat_a_subscriber(api: APIClient, topic: Any) -> None:
    body = api.post(URL, BODY, format="json").json()

    steps = [fan_out_chunk(notification_id=body["id"]) for _ in range(4)]

    # 4 subscribers in chunks of 2: two full chunks, an empty one finds the end.
    assert steps == [Step.MORE, Step.MORE, Step.DONE, Step.DONE]
    assert Delivery.objects.count() == 4
    assert FanOut.objects.get().created == 4


@pytest.mark.django_db
@override_settings(FANOUT_CHUNK_SIZE=2)
def test_cancel_stops_a_fan_out_under_way(api: APIClient, topic: Any) -> None:
    body = api.post(URL, BODY, format="json").json()
    fan_out_chunk(notification_id=body["id"])

    cancelled = api.post(f"{URL}/{body['id']}/cancel")
    after = fan_out_chunk(notification_id=body["id"])

    assert cancelled.status_code == 200
    assert after is Step.DONE
    assert list(Delivery.objects.values_list("status", flat=True)) == [DeliveryStatus.CANCELLED] * 2
    assert cancelled.json()["fan_out"]["done"] is True


@pytest.mark.django_db(transaction=True)
def test_backpressure_makes_the_fan_out_wait_not_fail(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    body = api.post(URL, BODY, format="json").json()
    clean_redis.flushdb()

    with override_settings(QUEUE_DEPTH_LIMIT=-1):  # every depth is too deep
        waited = fan_out_run(notification_id=body["id"])

    assert waited is Step.WAIT
    assert Delivery.objects.count() == 0
    fan = FanOut.objects.get()
    assert (fan.created, fan.finished_at) == (0, None)
    # The continuation is queued with a delay (kombu keeps it with an ETA).
    [message] = [m for _, m in broker.queued_messages([MAINTENANCE_QUEUE], client=clean_redis)]
    assert message["headers"]["task"] == FAN_OUT_TASK
    assert message["headers"]["eta"] is not None
    assert fan_out_run(notification_id=body["id"]) is Step.DONE
    assert Delivery.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_the_resume_sweep_queues_only_stalled_fan_outs(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    body = api.post(URL, BODY, format="json").json()
    clean_redis.flushdb()  # the first message is lost
    now = timezone.now()

    fresh = fan_outs_resume(now=now)
    stalled = fan_outs_resume(now=now + dt.timedelta(minutes=5))
    again = fan_outs_resume(now=now + dt.timedelta(seconds=30))

    assert (fresh, stalled, again) == (0, 1, 0)
    assert fan_out_messages(clean_redis) == [f"['{body['id']}']"]


@pytest.mark.django_db
def test_idempotent_replay_and_conflict(api: APIClient, topic: Any) -> None:
    first = api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    replay = api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = api.post(URL, {**BODY, "exclude": ["a"]}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert FanOut.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"topic": "no-such-topic"}, "topic"),
        ({"topic": "bad key"}, "topic"),
        ({"topic": "order-1-watchers\n"}, "topic"),  # matched whole, not trimmed to the topic
        ({"topic": " order-1-watchers"}, "topic"),
        ({"topic": 5}, "topic"),
        ({"category": "Weekly news"}, "category"),
        ({"recipients": ["a"]}, "recipients"),
        ({"exclude": "a"}, "exclude"),
        ({"exclude": [f"u{i}" for i in range(1001)]}, "exclude"),
        ({"channels": ["inapp", "fax"]}, "channels"),
        ({"variables": {}}, "variables"),
    ],
)
def test_bad_topic_requests_are_400_naming_the_field(
    api: APIClient, topic: Any, patch: dict[str, Any], field: str
) -> None:
    response = api.post(URL, {**BODY, **patch}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_exclude_without_topic_is_400(api: APIClient, demo: dict[str, Any]) -> None:
    body = {**BODY, "recipient": "user-1", "exclude": ["a"]}
    del body["topic"]

    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"exclude": ["only with 'topic'"]}


@pytest.mark.django_db
def test_another_clients_topic_is_unknown(api: APIClient, demo: dict[str, Any]) -> None:
    TopicFactory(key="order-1-watchers")  # another client's

    response = api.post(URL, BODY, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"topic": ["unknown topic 'order-1-watchers'"]}


@pytest.mark.django_db
def test_a_topic_without_subscribers_is_done_at_once(api: APIClient, demo: dict[str, Any]) -> None:
    TopicFactory(client=demo["client"], key="order-1-watchers")
    RecipientFactory(client=demo["client"], external_id="lonely")

    body = api.post(URL, BODY, format="json").json()

    assert body["expected"] == 0
    assert FanOut.objects.get().finished_at is not None


@pytest.mark.django_db(transaction=True)
@override_settings(FANOUT_CHUNK_SIZE=2, FANOUT_SLICE_SECONDS=0)
def test_a_resumed_run_publishes_the_last_committed_chunk_again(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    body = api.post(URL, BODY, format="json").json()
    fan_out_chunk(notification_id=body["id"])
    fan_out_chunk(notification_id=body["id"])  # the second chunk: its publish "cut short"
    second = {
        str(pk) for pk in Delivery.objects.order_by("recipient_id").values_list("id", flat=True)[2:]
    }
    clean_redis.flushdb()

    fan_out_run(notification_id=body["id"], resumed=True)

    assert set(queued_delivery_ids(clean_redis).get("inapp.normal", [])) == second


@pytest.mark.django_db(transaction=True)
@override_settings(FANOUT_CHUNK_SIZE=3, FANOUT_SLICE_SECONDS=0)
def test_a_kill_after_the_last_partial_chunk_is_resumed_and_that_chunk_republished(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    body = api.post(URL, BODY, format="json").json()
    fan_out_chunk(notification_id=body["id"])
    # The last chunk (1 of 3): committed, then the worker killed before its publish.
    assert fan_out_chunk(notification_id=body["id"]) is Step.MORE
    last = {str(Delivery.objects.order_by("recipient_id").values_list("id", flat=True).last())}
    clean_redis.flushdb()

    assert FanOut.objects.get().finished_at is None
    assert fan_outs_resume(now=timezone.now() + dt.timedelta(minutes=5)) == 1
    token = FanOut.objects.get().run_token
    fan_out_run(notification_id=body["id"], resumed=True, token=token)

    assert set(queued_delivery_ids(clean_redis).get("inapp.normal", [])) == last
    assert FanOut.objects.get().finished_at is not None
    assert Delivery.objects.count() == 4


@pytest.mark.django_db(transaction=True)
@override_settings(FANOUT_CHUNK_SIZE=2, FANOUT_SLICE_SECONDS=0)
def test_a_run_the_sweep_replaced_exits_without_sending(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    body = api.post(URL, BODY, format="json").json()
    fan_out_chunk(notification_id=body["id"])  # the first run: one chunk, then only slow
    assert fan_outs_resume(now=timezone.now() + dt.timedelta(minutes=5)) == 1
    token = FanOut.objects.get().run_token
    assert token
    assert fan_out_messages(clean_redis)[-1] == f"['{body['id']}']"
    clean_redis.flushdb()

    # The old run's continuation (no token) wakes up: it stops, sends and queues nothing.
    assert fan_out_run(notification_id=body["id"], resumed=True) is Step.SUPERSEDED
    assert fan_out_chunk(notification_id=body["id"]) is Step.SUPERSEDED
    assert Delivery.objects.count() == 2
    assert queued_delivery_ids(clean_redis) == {}
    assert fan_out_messages(clean_redis) == []

    # The sweep's run goes on after the cursor.
    assert fan_out_run(notification_id=body["id"], token=token) is Step.MORE
    while fan_out_run(notification_id=body["id"], token=token) is not Step.DONE:
        pass
    assert Delivery.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_finished_fan_out_does_not_wait_on_backpressure(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    body = api.post(URL, BODY, format="json").json()
    FanOut.objects.update(finished_at=timezone.now())  # e.g. cancelled meanwhile
    clean_redis.flushdb()

    with override_settings(QUEUE_DEPTH_LIMIT=-1):  # every depth is too deep
        step = fan_out_run(notification_id=body["id"])

    assert step is Step.DONE
    assert fan_out_messages(clean_redis) == []


@pytest.mark.django_db
def test_exclude_items_must_be_strings(api: APIClient, topic: Any) -> None:
    response = api.post(URL, {**BODY, "exclude": [123]}, format="json")

    assert response.status_code == 400, response.content
    assert "exclude" in response.json()["fields"]
    assert not Notification.objects.exists()
