"""Topic fan-out with a real worker: 10,000 subscribers, one trigger, each delivery created and
published exactly once; `exclude` honoured; the worker SIGKILLed mid-way and the fan-out
resumed after its last committed chunk, without duplicates or gaps; the template's throttle
counted per subscriber across two fan-outs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.fanout import fan_outs_resume
from apps.deliveries.models import Delivery, FanOut
from apps.recipients.models import Recipient
from apps.topics.models import Subscription
from notifier.queues import MAINTENANCE_QUEUE, channel_queues
from tests.factories import RecipientFactory, TopicFactory
from tests.support.processes import Worker, wait_until
from tests.support.queues import queued_delivery_ids

pytestmark = [pytest.mark.pipeline]

SUBSCRIBERS = 10_000


def subscribe(client: Any, count: int) -> None:
    """Topic `big` of `client`: `count` subscribers, and the actor (also subscribed)."""
    topic = TopicFactory(client=client, key="big")
    rows = Recipient.objects.bulk_create(
        RecipientFactory.build(client=client, external_id=ext)
        for ext in [*(f"watcher-{n:05d}" for n in range(count)), "actor"]
    )
    Subscription.objects.bulk_create(Subscription(topic=topic, recipient=r) for r in rows)


@pytest.fixture
def watchers(transactional_db: None, demo: dict[str, Any]) -> None:
    subscribe(demo["client"], SUBSCRIBERS)


def trigger(api: APIClient, expected: int = SUBSCRIBERS) -> str:
    return trigger_topic(api, expected)


def trigger_topic(api: APIClient, expected: int) -> str:
    response = api.post(
        "/api/v1/notifications",
        {
            "topic": "big",
            "exclude": ["actor"],
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["inapp"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["expected"] == expected
    return str(response.json()["id"])


def fan_out_worker(worker_factory: Callable[..., Worker], **env: str) -> Worker:
    # Production's maintenance worker: the solo pool.
    return worker_factory(queues=[MAINTENANCE_QUEUE], pool="solo", concurrency=1, env=env)


def wait_finished(notification_id: str) -> None:
    wait_until(
        lambda: FanOut.objects.filter(
            notification_id=notification_id, finished_at__isnull=False
        ).exists(),
        timeout=300,
        interval=0.5,
    )


def assert_each_subscriber_once(
    notification_id: str, clean_redis: redis.Redis, *, killed: bool = False
) -> None:
    fan = FanOut.objects.get(notification_id=notification_id)
    assert fan.finished_at is not None
    assert (fan.expected, fan.created) == (SUBSCRIBERS, SUBSCRIBERS)
    deliveries = Delivery.objects.filter(notification_id=notification_id)
    assert deliveries.count() == SUBSCRIBERS
    per_recipient = deliveries.values("recipient_id").annotate(n=Count("id"))
    assert {row["n"] for row in per_recipient} == {1}
    assert not deliveries.filter(recipient__external_id="actor").exists()
    # Published: no channel worker runs, so every send message is still queued.
    queued = Counter(i for ids in queued_delivery_ids(clean_redis).values() for i in ids)
    all_ids = {str(pk) for pk in deliveries.values_list("id", flat=True)}
    assert set(queued) == all_ids  # every delivery has its message: no gap
    twice = {i for i, n in queued.items() if n > 1}
    if not killed:
        assert twice == set()
        return
    # Killed: the resumed run publishes the last committed chunk again (the kill may have cut
    # its publish short after the commit). Those extra messages, within that one chunk, are
    # dropped by the send claim; never more than twice.
    assert len(twice) <= 1000
    assert max(queued.values()) <= 2


def snapshot(notification_id: str) -> tuple[FanOut, int]:
    """The fan-out row and its delivery count as of one moment (one REPEATABLE READ snapshot:
    a chunk committing between two reads cannot make them disagree)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        fan = FanOut.objects.get(notification_id=notification_id)
        return fan, Delivery.objects.filter(notification_id=notification_id).count()


def test_ten_thousand_subscribers_one_trigger_each_delivery_once(
    transactional_db: None,
    api: APIClient,
    watchers: None,
    worker_factory: Callable[..., Worker],
    clean_redis: redis.Redis,
) -> None:
    fan_out_worker(worker_factory)

    notification_id = trigger(api)

    wait_finished(notification_id)
    assert_each_subscriber_once(notification_id, clean_redis)


def test_sigkilled_mid_way_resumes_without_duplicates_or_gaps(
    transactional_db: None,
    api: APIClient,
    watchers: None,
    worker_factory: Callable[..., Worker],
    clean_redis: redis.Redis,
) -> None:
    # One long run (no continuation messages), so the kill lands inside it. On a fast machine
    # the run may finish all 10,000 before the kill: then the kill proved nothing, try again.
    for _ in range(3):
        first = fan_out_worker(worker_factory, FANOUT_SLICE_SECONDS="600")
        notification_id = trigger(api)
        wait_until(
            lambda nid=notification_id: FanOut.objects.filter(
                notification_id=nid, created__gte=3000
            ).exists(),
            timeout=300,
            interval=0.02,
        )
        first.kill()  # SIGKILL to the worker's process group, mid-chunk
        at_kill, deliveries = snapshot(notification_id)
        if at_kill.finished_at is None:
            break
        clean_redis.flushdb()
    else:
        pytest.fail("every fan-out finished before its kill: make the topic larger")

    assert 3000 <= at_kill.created < SUBSCRIBERS
    assert deliveries == at_kill.created
    # Nothing moves it any more until the resume sweep (beat's, run here as if later).
    fan_out_worker(worker_factory)
    later = timezone.now() + dt.timedelta(minutes=5)
    assert fan_outs_resume(now=later) == 1
    wait_finished(notification_id)
    assert_each_subscriber_once(notification_id, clean_redis, killed=True)


def test_backpressure_pauses_the_fan_out_until_the_queues_drain(
    transactional_db: None,
    api: APIClient,
    demo: dict[str, Any],
    worker_factory: Callable[..., Worker],
    clean_redis: redis.Redis,
) -> None:
    # Queues deeper than 10 messages hold the fan-out (one chunk publishes about 20).
    bound = {
        "QUEUE_DEPTH_LIMIT": "10",
        "QUEUE_DEPTH_CACHE_SECONDS": "0",
        "FANOUT_BACKPRESSURE_DELAY": "0.5",
    }
    subscribe(demo["client"], 3000)  # three chunks
    fanning = fan_out_worker(worker_factory, **bound)
    notification_id = trigger(api, 3000)
    wait_until(
        lambda: FanOut.objects.filter(notification_id=notification_id, created__gt=0).exists(),
        timeout=120,
    )

    # While nothing drains the in-app queues, the fan-out waits: no more chunks, no failure.
    held = FanOut.objects.get(notification_id=notification_id).created
    # The task's return value, logged at INFO: several runs found the queues too deep.
    wait_until(lambda: fanning.log().count("succeeded in") >= 3, timeout=60)
    assert "'wait'" in fanning.log()
    paused = FanOut.objects.get(notification_id=notification_id)
    assert paused.finished_at is None
    assert paused.created == held < 3000

    # Once an in-app worker drains the queues, it goes on to the end.
    worker_factory(queues=channel_queues("inapp"), env=bound)
    wait_finished(notification_id)
    fan = FanOut.objects.get(notification_id=notification_id)
    assert fan.created == 3000
    assert Delivery.objects.filter(notification_id=notification_id).count() == 3000


def test_the_templates_throttle_lets_each_subscriber_one_of_two_fan_outs(
    transactional_db: None,
    api: APIClient,
    demo: dict[str, Any],
    worker_factory: Callable[..., Worker],
    clean_redis: redis.Redis,
) -> None:
    # One notification per order and recipient in 10 minutes; two triggers for the same order
    template = demo["template"]
    template.throttle = {"limit": 1, "window": "10m", "key": "{{ order_id }}"}
    template.save()
    subscribe(demo["client"], 1500)  # two chunks each
    fan_out_worker(worker_factory)

    ids = [trigger_topic(api, 1500), trigger_topic(api, 1500)]
    for notification_id in ids:
        wait_finished(notification_id)

    # Each subscriber has one delivery of each; exactly one of the two went out (queued), the
    # other is skipped, `throttled` (however the two fan-outs' chunks interleaved)
    rows = Delivery.objects.filter(notification_id__in=ids).values_list(
        "recipient_id", "status", "reason"
    )
    by_recipient: dict[int, list[tuple[str, str]]] = {}
    for recipient_id, status, reason in rows:
        by_recipient.setdefault(recipient_id, []).append((status, reason))
    assert len(by_recipient) == 1500
    assert {tuple(sorted(pair)) for pair in by_recipient.values()} == {
        (("queued", ""), ("skipped", "throttled"))
    }
    queued = {i for ids_ in queued_delivery_ids(clean_redis).values() for i in ids_}
    sendable = Delivery.objects.filter(notification_id__in=ids, status="queued")
    assert queued == {str(pk) for pk in sendable.values_list("id", flat=True)}
