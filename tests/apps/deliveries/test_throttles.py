"""Throttles at creation: per recipient and rendered key, atomic in Redis under concurrency,
`critical` bypasses, a request may override or switch off the template's, a Redis outage is a
503 for a throttled notification only. Bad throttles: test_throttle_validation.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
import redis.client
from django.conf import settings
from rest_framework.test import APIClient

from apps.core.metrics import WORKFLOW_THROTTLED
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.deliveries.throttles import Slots, throttle_key, throttle_slots
from apps.templates.models import Template
from notifier.workflows import Throttle
from tests.support.concurrency import post_together
from tests.support.queues import queued_delivery_counts
from tests.support.redis_server import unreachable_url

pytestmark = [pytest.mark.django_db(transaction=True)]

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["email", "sms"],
}
ONE_PER_ORDER = {"limit": 1, "window": "10m", "key": "{{ order_id }}"}


def throttle_template(demo: dict[str, object], throttle: dict[str, Any] | None) -> None:
    template = demo["template"]
    assert isinstance(template, Template)
    template.throttle = throttle
    template.save()


def post(api: APIClient, **extra: Any) -> Any:
    response = api.post(URL, {**BODY, **extra}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def throttled_count(channel: str) -> float:
    return float(WORKFLOW_THROTTLED.labels(channel=channel)._value.get())


def test_second_notification_in_the_window_is_skipped_throttled_with_event_and_metric(
    api: APIClient,
    demo: dict[str, object],
    clean_redis: redis.Redis,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Given a template allowing one notification per order and recipient in 10 minutes
    throttle_template(demo, ONE_PER_ORDER)
    first = post(api)
    before = throttled_count("email")

    # When the same order is notified again
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = post(api)

    # Then both of its deliveries are skipped, reason `throttled`, nothing is queued
    assert [d["status"] for d in first["deliveries"]] == ["queued", "queued"]
    assert [(d["status"], d["reason"]) for d in second["deliveries"]] == [
        ("skipped", "throttled"),
        ("skipped", "throttled"),
    ]
    assert callbacks == []
    delivery = Delivery.objects.get(id=second["deliveries"][0]["id"])
    assert list(delivery.events.values_list("status", "detail")) == [("skipped", "throttled")]
    assert throttled_count("email") == before + 1
    assert Notification.objects.get(id=second["id"]).throttle == ONE_PER_ORDER
    assert sum(queued_delivery_counts(clean_redis).values()) == 2  # the first notification's two


def test_the_key_splits_throttles_and_other_recipients_have_their_own(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    throttle_template(demo, ONE_PER_ORDER)
    demo_client = demo["recipient"].client  # type: ignore[attr-defined]
    from tests.factories import RecipientFactory

    RecipientFactory(client=demo_client, external_id="user-2")

    statuses = [
        post(api, variables={"order_id": order}, recipient=who)["deliveries"][0]["status"]
        for order, who in [
            ("A-1", "user-1"),
            ("A-2", "user-1"),
            ("A-1", "user-2"),
            ("A-2", "user-1"),
        ]
    ]

    assert statuses == ["queued", "queued", "queued", "skipped"]


def test_a_throttled_recipients_fallback_is_throttled_too(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a recipient with no email address, a fallback to SMS and a throttle of one
    throttle_template(demo, ONE_PER_ORDER)
    from tests.factories import RecipientFactory

    RecipientFactory(client=demo["recipient"].client, external_id="no-mail", email="")  # type: ignore[attr-defined]
    body = {"recipient": "no-mail", "channels": ["email"], "fallback": ["sms"]}

    # When the same order is notified three times
    responses = [post(api, **body) for _ in range(3)]

    # Then only the first falls back to SMS; the others' fallback is skipped, throttled
    sms = Delivery.objects.filter(channel="sms").order_by("created_at")
    assert [(d.status, d.reason) for d in sms] == [
        (DeliveryStatus.QUEUED, ""),
        (DeliveryStatus.SKIPPED, "throttled"),
        (DeliveryStatus.SKIPPED, "throttled"),
    ]
    assert [len(r["deliveries"]) for r in responses] == [2, 2, 2]
    assert sum(queued_delivery_counts(clean_redis).values()) == 1


def test_critical_bypasses_and_takes_no_slot(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    throttle_template(demo, ONE_PER_ORDER)

    critical = [post(api, priority="critical")["deliveries"][0]["status"] for _ in range(3)]
    normal = [post(api)["deliveries"][0]["status"] for _ in range(2)]

    assert critical == ["queued", "queued", "queued"]
    assert normal == ["queued", "skipped"]


def test_a_request_overrides_or_switches_off_the_templates_throttle(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    throttle_template(demo, ONE_PER_ORDER)
    post(api)

    off = post(api, throttle=False)
    two = {"limit": 2, "window": "1h"}
    own = [post(api, throttle=two)["deliveries"][0]["status"] for _ in range(3)]

    assert off["deliveries"][0]["status"] == "queued"
    assert Notification.objects.get(id=off["id"]).throttle is None
    assert own == ["queued", "queued", "skipped"]


def test_the_window_ends(api: APIClient, demo: dict[str, object], clean_redis: redis.Redis) -> None:
    # Given a throttled second notification; the counter's TTL is the window
    throttle = {"limit": 1, "window": "1h"}
    post(api, throttle=throttle)
    assert post(api, throttle=throttle)["deliveries"][0]["status"] == "skipped"
    (key,) = clean_redis.keys("notifier:throttle:*")
    assert 3_590_000 < clean_redis.pttl(key) <= 3_600_000

    # When the window ends (its counter expires; simulated, not waited for)
    clean_redis.pexpire(key, 1)
    while clean_redis.exists(key):
        pass

    # Then the next notification goes and opens a new window
    assert post(api, throttle=throttle)["deliveries"][0]["status"] == "queued"
    assert int(clean_redis.hget(key, "n")) == 1


def test_a_throttled_notification_holds_no_slot(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a limit of one reached, and two more notifications throttled
    throttle_template(demo, ONE_PER_ORDER)
    statuses = [post(api)["deliveries"][0]["status"] for _ in range(3)]
    (key,) = clean_redis.keys("notifier:throttle:*")

    # Then the counter holds the one slot taken, not three
    assert statuses == ["queued", "skipped", "skipped"]
    assert int(clean_redis.hget(key, "n")) == 1


def test_a_committed_notification_leaves_only_the_count_in_its_counter(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a limit of two per order
    throttle_template(demo, {**ONE_PER_ORDER, "limit": 2})

    # When one notification commits, its counter keeps the count and no holder field
    assert post(api)["deliveries"][0]["status"] == "queued"
    (key,) = clean_redis.keys("notifier:throttle:*")
    assert clean_redis.hgetall(key) == {b"n": b"1"}

    # And so after the second
    assert post(api)["deliveries"][0]["status"] == "queued"
    assert clean_redis.hgetall(key) == {b"n": b"2"}

    # Then the limit still holds for the next, which takes nothing
    assert [(d["status"], d["reason"]) for d in post(api)["deliveries"]] == [
        ("skipped", "throttled"),
        ("skipped", "throttled"),
    ]
    assert clean_redis.hgetall(key) == {b"n": b"2"}


def _one_per_window(recipient_id: int = 1) -> tuple[Throttle, str]:
    throttle = Throttle(limit=1, window=dt.timedelta(hours=1))
    return throttle, throttle_key(
        client_id=1, template="t", recipient_id=recipient_id, throttle=throttle, key=""
    )


def test_a_failed_request_gives_its_slot_back_even_after_throttled_ones_committed(
    clean_redis: redis.Redis,
) -> None:
    # Given a request holding the only slot, and a throttled one that committed meanwhile
    throttle, counter = _one_per_window()
    first, throttled = Slots(), Slots()
    assert first.take(throttle, [counter], holder="n1") == [True]
    assert throttled.take(throttle, [counter], holder="n2") == [False]

    # When the first request fails and gives its slot back
    first.give_back()

    # Then the slot is free again (the throttled request took none to fill it)
    assert Slots().take(throttle, [counter], holder="n3") == [True]
    assert int(clean_redis.hget(counter, "n")) == 1


def test_slots_taken_by_a_call_whose_answer_was_lost_are_given_back(
    clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a take whose scripts ran in Redis but whose answer never arrived (a read timeout)
    throttle, counter = _one_per_window()
    _, other = _one_per_window(recipient_id=2)
    run = redis.client.Pipeline.execute
    calls: list[int] = []

    def answer_lost(self: redis.client.Pipeline, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        answers = run(self, *args, **kwargs)
        if len(calls) == 1:  # the take's call; the give-back's gets its answer
            raise redis.TimeoutError("Timeout reading from socket")
        return answers

    with monkeypatch.context() as patch:
        patch.setattr(redis.client.Pipeline, "execute", answer_lost)
        with pytest.raises(redis.TimeoutError), throttle_slots() as slots:
            slots.take(throttle, [counter, other], holder="n1")

    # Then both slots were given back: the next notification of each counter goes
    assert len(calls) == 2
    assert [int(clean_redis.hget(c, "n")) for c in (counter, other)] == [0, 0]
    assert Slots().take(throttle, [counter, other], holder="n2") == [True, True]


def test_a_give_back_after_the_window_ended_leaves_the_next_window_alone(
    clean_redis: redis.Redis,
) -> None:
    # Given a slow request that took a slot, and its window ended (simulated: the counter is
    # deleted) and the next window's only slot taken
    throttle, counter = _one_per_window()
    slow = Slots()
    assert slow.take(throttle, [counter], holder="n1") == [True]
    clean_redis.delete(counter)
    assert Slots().take(throttle, [counter], holder="n2") == [True]

    # When the slow request fails and gives its slot back
    slow.give_back()

    # Then the next window still counts its one slot: a further notification is throttled
    assert int(clean_redis.hget(counter, "n")) == 1
    assert Slots().take(throttle, [counter], holder="n3") == [False]


def test_a_changed_throttle_counts_on_its_own(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a short limit reached
    post(api, throttle={"limit": 1, "window": "1h"})

    # When the throttle is raised (another limit, another window)
    statuses = [
        post(api, throttle=throttle)["deliveries"][0]["status"]
        for throttle in ({"limit": 2, "window": "1h"}, {"limit": 1, "window": "2h"})
    ]

    # Then each counts from zero in its own counter
    assert statuses == ["queued", "queued"]
    assert len(clean_redis.keys("notifier:throttle:*")) == 3


def test_20_parallel_triggers_with_limit_1_send_exactly_one(
    api_key: tuple[Any, str], demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a throttle of one, and twenty requests from twenty threads released at once
    throttle_template(demo, ONE_PER_ORDER)

    # When they are posted from twenty threads at once
    results = post_together(api_key[1], URL, [{**BODY, "channels": ["email"]}] * 20)

    # Then every request is accepted, one delivery is queued, nineteen are throttled
    assert [code for code, _, _ in results] == [202] * 20
    statuses = sorted(body["deliveries"][0]["status"] for _, body, _ in results)
    assert statuses == ["queued"] + ["skipped"] * 19
    assert Delivery.objects.filter(status=DeliveryStatus.QUEUED).count() == 1
    assert Delivery.objects.filter(status=DeliveryStatus.SKIPPED, reason="throttled").count() == 19
    assert sum(queued_delivery_counts(clean_redis).values()) == 1


def test_10_parallel_requests_with_one_idempotency_key_store_a_sent_notification(
    api_key: tuple[Any, str], demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a throttle of one, and ten requests with the same Idempotency-Key at once
    throttle_template(demo, ONE_PER_ORDER)

    # When they are posted from ten threads at once
    results = post_together(
        api_key[1], URL, [{**BODY, "channels": ["email"]}] * 10, HTTP_IDEMPOTENCY_KEY="order-A-1"
    )

    # Then one notification is stored, its delivery queued (not throttled by its own replays),
    # every response is that one, and the counter holds one slot
    assert [code for code, _, _ in results] == [202] * 10
    notification = Notification.objects.get()
    assert {body["id"] for _, body, _ in results} == {str(notification.id)}
    statuses = [body["deliveries"][0]["status"] for _, body, _ in results]
    assert statuses == ["queued"] * 10
    assert list(Delivery.objects.values_list("status", flat=True)) == [DeliveryStatus.QUEUED]
    (key,) = clean_redis.keys("notifier:throttle:*")
    assert int(clean_redis.hget(key, "n")) == 1
    assert sum(queued_delivery_counts(clean_redis).values()) == 1


def test_redis_down_is_503_for_a_throttled_notification_and_202_without_one(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    throttle_template(demo, ONE_PER_ORDER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "REDIS_URL", unreachable_url())
        from apps.clients import auth

        auth._key_bucket.cache_clear()
        try:
            throttled = api.post(URL, BODY, format="json")
            unthrottled = api.post(URL, {**BODY, "throttle": False}, format="json")
        finally:
            auth._key_bucket.cache_clear()

    assert throttled.status_code == 503, throttled.content
    assert throttled.json()["code"] == "unavailable"
    assert int(throttled["Retry-After"]) > 0
    assert unthrottled.status_code == 202, unthrottled.content
    assert Notification.objects.count() == 1  # the unthrottled one only


def test_slots_of_a_request_that_fails_after_taking_them_are_given_back(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given a throttled request that fails after taking its slot (a failing insert)
    throttle_template(demo, ONE_PER_ORDER)
    from apps.deliveries import services

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("insert failed")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "notification_insert", broken)
        with pytest.raises(RuntimeError):
            api.post(URL, BODY, format="json")

    # Then the slot was given back: the next notification goes
    assert Notification.objects.count() == 0
    assert post(api)["deliveries"][0]["status"] == "queued"
