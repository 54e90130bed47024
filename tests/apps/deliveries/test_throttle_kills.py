"""A throttle slot is held by its notification: a process killed between taking slots and its
commit (SIGKILL, OOM: no give-back runs) leaves them taken, and the notification's own re-run
(an idempotent retry of the POST, the fan-out's resumed chunk) finds them already its own
instead of counting itself over the limit. Other notifications still count them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries import fanout, services
from apps.deliveries.fanout import fan_out_chunk, fan_out_run, fan_outs_resume
from apps.deliveries.models import Delivery, DeliveryStatus, FanOut, Notification
from apps.deliveries.throttles import Slots, throttle_key
from notifier.workflows import Throttle
from tests.factories import SubscriptionFactory, TopicFactory

pytestmark = [pytest.mark.django_db(transaction=True)]

URL = "/api/v1/notifications"
ONE_PER_ORDER = {"limit": 1, "window": "10m", "key": "{{ order_id }}"}
DIRECT: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["email"],
}
TOPIC_BODY: dict[str, Any] = {
    "topic": "order-1-watchers",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["inapp"],
}


class Killed(Exception):
    """Stands for SIGKILL: the transaction is lost and nothing after it runs."""


@contextmanager
def killed_before_commit(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> Iterator[None]:
    """`module.name` (the insert) dies after the slots were taken; no give-back runs."""
    with monkeypatch.context() as patch:
        patch.setattr(Slots, "give_back", lambda self: None)

        def die(*_args: Any, **_kwargs: Any) -> None:
            raise Killed

        patch.setattr(module, name, die)
        with pytest.raises(Killed):
            yield


@pytest.fixture
def throttled_template(demo: dict[str, Any]) -> dict[str, Any]:
    demo["template"].throttle = ONE_PER_ORDER
    demo["template"].save()
    return demo


def counters(clean_redis: redis.Redis) -> list[int]:
    return sorted(int(clean_redis.hget(k, "n")) for k in clean_redis.keys("notifier:throttle:*"))


def test_a_slot_is_held_by_its_holder_and_taken_again_by_it(clean_redis: redis.Redis) -> None:
    # Given a slot of a limit of one taken by notification n1's attempt that died (no give-back)
    throttle = Throttle(limit=1, window=dt.timedelta(hours=1))
    counter = throttle_key(client_id=1, template="t", recipient_id=1, throttle=throttle, key="")
    assert Slots().take(throttle, [counter], holder="n1") == [True]

    # When n1 runs again, and then n2 comes
    again = Slots()
    assert again.take(throttle, [counter], holder="n1") == [True]

    # Then n1 holds its one slot, n2 is over the limit
    assert Slots().take(throttle, [counter], holder="n2") == [False]
    assert int(clean_redis.hget(counter, "n")) == 1

    # And n1's second attempt failing gives the slot back: n2 then gets it
    again.give_back()
    assert Slots().take(throttle, [counter], holder="n2") == [True]


def test_a_slow_failed_attempt_does_not_free_the_slot_its_retry_took_over(
    clean_redis: redis.Redis,
) -> None:
    # Given n1's first attempt holding the slot, and n1's retry taking it over meanwhile
    throttle = Throttle(limit=1, window=dt.timedelta(hours=1))
    counter = throttle_key(client_id=1, template="t", recipient_id=1, throttle=throttle, key="")
    slow = Slots()
    assert slow.take(throttle, [counter], holder="n1") == [True]
    assert Slots().take(throttle, [counter], holder="n1") == [True]

    # When the first attempt fails late and gives back
    slow.give_back()

    # Then the retry (which commits) still holds it
    assert Slots().take(throttle, [counter], holder="n2") == [False]
    assert int(clean_redis.hget(counter, "n")) == 1


def test_a_post_retried_with_its_idempotency_key_after_a_kill_is_not_throttled(
    api: APIClient,
    throttled_template: dict[str, Any],
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a request with an Idempotency-Key killed after taking its slot, before its commit
    with killed_before_commit(monkeypatch, services, "notification_insert"):
        api.post(URL, DIRECT, format="json", HTTP_IDEMPOTENCY_KEY="order-A-1")
    assert Notification.objects.count() == 0
    assert counters(clean_redis) == [1]

    # When the client retries it with the same key
    retry = api.post(URL, DIRECT, format="json", HTTP_IDEMPOTENCY_KEY="order-A-1")

    # Then it is sent, holding the one slot; another notification of the order is throttled
    assert retry.status_code == 202, retry.content
    assert [d["status"] for d in retry.json()["deliveries"]] == ["queued"]
    other = api.post(URL, DIRECT, format="json", HTTP_IDEMPOTENCY_KEY="order-A-1-again")
    assert [(d["status"], d["reason"]) for d in other.json()["deliveries"]] == [
        ("skipped", "throttled")
    ]
    assert counters(clean_redis) == [1]


@override_settings(FANOUT_CHUNK_SIZE=2, FANOUT_SLICE_SECONDS=60)
def test_a_fan_out_resumed_after_a_kill_does_not_throttle_its_own_subscribers(
    api: APIClient,
    throttled_template: dict[str, Any],
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a topic of four subscribers and a throttle of one per order
    demo = throttled_template
    topic = TopicFactory(client=demo["client"], key=TOPIC_BODY["topic"])
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])
    for ext in ("a", "b", "c"):
        SubscriptionFactory(
            topic=topic, recipient__client=demo["client"], recipient__external_id=ext
        )
    response = api.post(URL, TOPIC_BODY, format="json")
    assert response.status_code == 202, response.content
    notification_id = response.json()["id"]

    # When the first chunk's worker is killed after taking its two slots, before its commit
    with killed_before_commit(monkeypatch, fanout, "deliveries_insert"):
        fan_out_chunk(notification_id=notification_id)
    assert Delivery.objects.count() == 0
    assert counters(clean_redis) == [1, 1]

    # And the sweep resumes the fan-out
    assert fan_outs_resume(now=timezone.now() + dt.timedelta(minutes=5)) == 1
    token = FanOut.objects.get().run_token
    fan_out_run(notification_id=notification_id, resumed=True, token=token)

    # Then every subscriber's delivery is queued, each holding one slot
    assert FanOut.objects.get().finished_at is not None
    statuses = list(Delivery.objects.values_list("status", flat=True))
    assert statuses == [DeliveryStatus.QUEUED] * 4
    assert counters(clean_redis) == [1, 1, 1, 1]
    # And, the chunks committed, the counters keep only their count (no holder fields)
    assert [clean_redis.hkeys(k) for k in clean_redis.keys("notifier:throttle:*")] == [[b"n"]] * 4

    # And another fan-out of the order finds all four over the limit
    again = api.post(URL, TOPIC_BODY, format="json").json()["id"]
    fan_out_run(notification_id=again)
    later = Delivery.objects.filter(notification_id=again)
    assert {(d.status, d.reason) for d in later} == {(DeliveryStatus.SKIPPED, "throttled")}
    assert later.count() == 4
