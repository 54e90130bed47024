"""A topic's fan-out applies the workflows as a request for listed recipients does (building.py):
the template's or the request's throttle per subscriber (a slot of a rolled-back chunk given
back), the digest (each subscriber's deliveries join their own windows), the escalation steps
(scheduled per subscriber, cancelled with the notification), and their request checks are 400s
before the 202. The chunks run in-process; the real worker in tests/pipeline/test_topic_fanout.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from django.test import override_settings
from rest_framework.test import APIClient

from apps.deliveries import fanout
from apps.deliveries.fanout import Step, fan_out_chunk
from apps.deliveries.models import Delivery, DeliveryStatus, Digest, FanOut, Notification
from apps.deliveries.throttles import throttle_key
from apps.recipients.models import Recipient
from apps.templates.models import Template
from notifier import digests, workflows
from notifier.workflows import Throttle
from tests.factories import SubscriptionFactory, TopicFactory, comment_template

pytestmark = [pytest.mark.django_db(transaction=True)]

URL = "/api/v1/notifications"
TOPIC = "order-1-watchers"
BODY: dict[str, Any] = {
    "topic": TOPIC,
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["inapp"],
}
ONE_PER_ORDER = {"limit": 1, "window": "10m", "key": "{{ order_id }}"}
STEPS = [
    {"after": "30m", "channels": ["email"], "unless": "read"},
    {"after": "2h", "channels": ["sms"], "unless": "read"},
]
SUBSCRIBERS = ["user-1", "a", "b", "c"]


@pytest.fixture
def topic(demo: dict[str, Any]) -> Any:
    """The demo client's topic followed by user-1 (the demo recipient), a, b and c."""
    client = demo["client"]
    topic = TopicFactory(client=client, key=TOPIC)
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])
    for ext in ("a", "b", "c"):
        SubscriptionFactory(topic=topic, recipient__client=client, recipient__external_id=ext)
    return topic


def accept(api: APIClient, body: dict[str, Any]) -> str:
    response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["recipients"] == "fan-out"
    return str(response.json()["id"])


def fan_out_all(notification_id: str) -> None:
    for _ in range(10):
        if fan_out_chunk(notification_id=notification_id) is Step.DONE:
            return
    raise AssertionError("the fan-out did not finish")


def rows(notification_id: str) -> dict[tuple[str, str], Delivery]:
    return {
        (d.recipient.external_id, d.channel): d
        for d in Delivery.objects.filter(notification_id=notification_id).select_related(
            "recipient"
        )
    }


def set_throttle(demo: dict[str, Any], throttle: dict[str, Any] | None) -> None:
    template = demo["template"]
    template.throttle = throttle
    template.save()


def test_the_templates_throttle_skips_a_subscriber_already_notified(
    api: APIClient, demo: dict[str, Any], topic: Any, clean_redis: redis.Redis
) -> None:
    # Given a template allowing one notification per order and recipient, and `a` notified
    set_throttle(demo, ONE_PER_ORDER)
    direct = {k: v for k, v in BODY.items() if k != "topic"} | {"recipients": ["a"]}
    assert api.post(URL, direct, format="json").status_code == 202

    # When the topic's notification for the same order fans out
    notification_id = accept(api, BODY)
    fan_out_all(notification_id)

    # Then `a` is skipped, `throttled`; the others are queued
    statuses = {ext: (d.status, d.reason) for (ext, _), d in rows(notification_id).items()}
    assert statuses == {
        "user-1": (DeliveryStatus.QUEUED, ""),
        "a": (DeliveryStatus.SKIPPED, "throttled"),
        "b": (DeliveryStatus.QUEUED, ""),
        "c": (DeliveryStatus.QUEUED, ""),
    }
    assert Notification.objects.get(id=notification_id).throttle == ONE_PER_ORDER
    throttled = rows(notification_id)[("a", "inapp")]
    assert list(throttled.events.values_list("status", "detail")) == [("skipped", "throttled")]
    assert FanOut.objects.get(notification_id=notification_id).created == 4

    # And a second fan-out for the order finds every subscriber over the limit
    again = accept(api, BODY)
    fan_out_all(again)
    assert {d.reason for d in rows(again).values()} == {"throttled"}


def test_a_request_throttle_applies_and_false_switches_the_templates_off(
    api: APIClient, demo: dict[str, Any], topic: Any, clean_redis: redis.Redis
) -> None:
    set_throttle(demo, ONE_PER_ORDER)
    free = accept(api, {**BODY, "throttle": False})
    fan_out_all(free)
    own = accept(api, {**BODY, "throttle": {"limit": 1, "window": "1h"}})
    fan_out_all(own)
    over = accept(api, {**BODY, "throttle": {"limit": 1, "window": "1h"}})
    fan_out_all(over)

    assert Notification.objects.get(id=free).throttle is None
    assert {d.status for d in rows(free).values()} == {DeliveryStatus.QUEUED}
    assert {d.status for d in rows(own).values()} == {DeliveryStatus.QUEUED}
    assert {d.reason for d in rows(over).values()} == {"throttled"}


@override_settings(FANOUT_CHUNK_SIZE=2)
def test_a_chunk_that_rolls_back_gives_its_throttle_slots_back(
    api: APIClient,
    demo: dict[str, Any],
    topic: Any,
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_throttle(demo, ONE_PER_ORDER)
    notification_id = accept(api, BODY)
    insert = fanout.deliveries_insert

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the insert fails after the slots were taken")

    # When the first chunk fails after taking its two slots
    monkeypatch.setattr(fanout, "deliveries_insert", broken)
    with pytest.raises(RuntimeError):
        fan_out_chunk(notification_id=notification_id)
    assert Delivery.objects.count() == 0
    assert FanOut.objects.get().after_recipient == 0  # the cursor did not move

    # Then the chunk run again finds its slots free: nobody is throttled by the failed try
    monkeypatch.setattr(fanout, "deliveries_insert", insert)
    fan_out_all(notification_id)
    assert [d.status for d in rows(notification_id).values()] == [DeliveryStatus.QUEUED] * 4


@pytest.fixture
def comments(demo: dict[str, Any]) -> Template:
    template = comment_template(
        demo["client"], digest={"window": "1m", "key": "{{ post_id }}", "max_items": 5}
    )
    assert isinstance(template, Template)
    return template


def comment(n: int, **extra: Any) -> dict[str, Any]:
    variables = {"post_id": "p1", "post_title": "Post p1", "author": f"a{n}", "text": f"c{n}"}
    return {
        "topic": TOPIC,
        "template": "new_comment",
        "variables": variables,
        "channels": ["email"],
        **extra,
    }


def test_deliveries_join_each_subscribers_digest_window(
    api: APIClient, comments: Template, topic: Any, clean_redis: redis.Redis
) -> None:
    # Two comments to the topic's four subscribers
    first, second = accept(api, comment(1)), accept(api, comment(2))
    fan_out_all(first)
    fan_out_all(second)

    # Each subscriber's two deliveries joined one window of theirs (key p1)
    for notification_id in (first, second):
        assert {d.status for d in rows(notification_id).values()} == {DeliveryStatus.DIGESTED}
    windows = Digest.objects.filter(key="p1", channel="email", closed_at__isnull=True)
    assert sorted(w.recipient.external_id for w in windows) == sorted(SUBSCRIBERS)
    for window in windows:
        joined = Delivery.objects.filter(digest=window, status=DeliveryStatus.DIGESTED)
        assert {str(n) for n in joined.values_list("notification_id", flat=True)} == {
            first,
            second,
        }
    assert Notification.objects.get(id=first).digest == {
        "window": "60s",
        "key": "{{ post_id }}",
        "max_items": 5,
    }


def test_a_request_digest_overrides_and_false_sends_each_on_its_own(
    api: APIClient, comments: Template, topic: Any, clean_redis: redis.Redis
) -> None:
    own = accept(api, comment(1, digest={"window": "5m", "key": "{{ author }}"}))
    fan_out_all(own)
    off = accept(api, comment(2, digest=False))
    fan_out_all(off)

    assert {d.status for d in rows(own).values()} == {DeliveryStatus.DIGESTED}
    assert set(Digest.objects.values_list("key", flat=True)) == {"a1"}
    assert Notification.objects.get(id=off).digest is None
    assert {d.status for d in rows(off).values()} == {DeliveryStatus.QUEUED}


def test_escalation_steps_are_scheduled_for_each_subscriber(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    notification_id = accept(api, {**BODY, "escalation": STEPS})
    fan_out_all(notification_id)

    found = rows(notification_id)
    assert {key: (d.status, d.escalation_step) for key, d in found.items()} == {
        **{(ext, "inapp"): (DeliveryStatus.QUEUED, None) for ext in SUBSCRIBERS},
        **{(ext, "email"): (DeliveryStatus.SCHEDULED, 1) for ext in SUBSCRIBERS},
        **{(ext, "sms"): (DeliveryStatus.SCHEDULED, 2) for ext in SUBSCRIBERS},
    }
    step = found[("b", "email")]
    assert list(step.events.values_list("detail", flat=True)) == [
        "escalation step 1: after 30m unless read; accepted"
    ]
    # `expected` and `created` count the requested channels only
    fan = FanOut.objects.get()
    assert (fan.expected, fan.created) == (4, 4)


def test_workflows_accepted_before_a_rule_tightened_still_fan_out(
    api: APIClient,
    demo: dict[str, Any],
    comments: Template,
    topic: Any,
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Accepted under today's rules: a throttle of 500, two steps, a digest of 5 items in 60 s
    stepped = accept(api, {**BODY, "throttle": {"limit": 500, "window": "1h"}, "escalation": STEPS})
    digested = accept(api, comment(1))
    # Then the rules tighten (a deploy) before the fan-outs run
    monkeypatch.setattr(workflows, "THROTTLE_MAX_LIMIT", 100)
    monkeypatch.setattr(workflows, "ESCALATION_MAX_STEPS", 1)
    monkeypatch.setattr(digests, "MAX_ITEMS_LIMIT", 3)
    monkeypatch.setattr(digests, "MAX_WINDOW", dt.timedelta(seconds=30))

    fan_out_all(stepped)
    fan_out_all(digested)

    # The workflows apply as they were accepted
    found = rows(stepped)
    assert {key: d.escalation_step for key, d in found.items() if key[0] == "a"} == {
        ("a", "inapp"): None,
        ("a", "email"): 1,
        ("a", "sms"): 2,
    }
    assert int(clean_redis.hget(_counter_of(stepped, "a"), "n")) == 1
    assert {d.status for d in rows(digested).values()} == {DeliveryStatus.DIGESTED}
    window = Digest.objects.get(recipient__external_id="a")
    assert (window.closes_at - window.opened_at).total_seconds() == pytest.approx(60, abs=1)


def _counter_of(notification_id: str, external_id: str) -> str:
    notification = Notification.objects.get(id=notification_id)
    return throttle_key(
        client_id=notification.client_id,
        template=notification.template.key,
        recipient_id=Recipient.objects.get(external_id=external_id).pk,
        throttle=Throttle(limit=500, window=dt.timedelta(hours=1)),
        key="",
    )


@override_settings(FANOUT_CHUNK_SIZE=2)
def test_cancel_during_the_fan_out_cancels_the_steps_created_and_creates_no_more(
    api: APIClient, topic: Any, clean_redis: redis.Redis
) -> None:
    notification_id = accept(api, {**BODY, "escalation": STEPS})
    assert fan_out_chunk(notification_id=notification_id) is Step.MORE  # two subscribers

    cancelled = api.post(f"{URL}/{notification_id}/cancel")

    assert cancelled.status_code == 200, cancelled.content
    assert fan_out_chunk(notification_id=notification_id) is Step.DONE
    found = rows(notification_id)
    assert len(found) == 6  # two subscribers: in-app and two steps each
    assert {d.status for d in found.values()} == {DeliveryStatus.CANCELLED}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        # the throttle's key needs a variable the request lacks
        ({"throttle": {"limit": 1, "window": "10m", "key": "{{ thread_id }}"}}, "throttle"),
        # a step on a channel already requested
        ({"escalation": [{"after": "30m", "channels": ["inapp"]}]}, "escalation[0].channels"),
        # a digest key that parses but does not render (over the key's output limit)
        ({"digest": {"window": "1m", "key": '{{ "x"|ljust:"2000" }}'}}, "digest"),
    ],
)
def test_a_bad_workflow_with_a_topic_is_a_400_before_the_202(
    api: APIClient, topic: Any, patch: dict[str, Any], field: str, clean_redis: redis.Redis
) -> None:
    response = api.post(URL, {**BODY, **patch}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()
    assert not Notification.objects.exists()
    assert not FanOut.objects.exists()
    assert clean_redis.keys("notifier:throttle:*") == []


def test_a_subscriber_whose_digest_key_does_not_render_is_sent_on_its_own(
    api: APIClient, comments: Template, topic: Any, clean_redis: redis.Redis
) -> None:
    # A key reading the recipient: it renders for the sample the request checks (user-1)...
    key = '{% if recipient.name == "Bob" %}{{ "x"|ljust:"2000" }}{% endif %}{{ post_id }}'
    notification_id = accept(api, comment(1, digest={"window": "1m", "key": key}))
    # ...but is over the key's render limits for subscriber `c`, renamed since
    Recipient.objects.filter(client=topic.client, external_id="c").update(name="Bob")

    fan_out_all(notification_id)  # the chunk does not fail for one subscriber

    found = {ext: d.status for (ext, _), d in rows(notification_id).items()}
    assert found == {
        "user-1": DeliveryStatus.DIGESTED,
        "a": DeliveryStatus.DIGESTED,
        "b": DeliveryStatus.DIGESTED,
        "c": DeliveryStatus.QUEUED,
    }
    assert FanOut.objects.get().finished_at is not None
