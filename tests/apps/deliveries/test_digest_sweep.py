"""The digest sweep: no message per window in the broker; beat's frequent sweep on the `timers`
queue closes the due windows in bounded batches (SKIP LOCKED) and queues itself again while a
full batch leaves more due."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import broker
from apps.deliveries.digests import SWEEP_TASK, digests_close_due
from apps.deliveries.models import Digest
from apps.templates.models import Template
from notifier.queues import ALL_QUEUES, MAINTENANCE_QUEUE, TIMERS_QUEUE
from tests.factories import COMMENT_DIGEST_VARIANTS, TemplateFactory

URL = "/api/v1/notifications"


@pytest.fixture
def comments(demo: dict[str, Any]) -> Template:
    return TemplateFactory(  # type: ignore[no-any-return]
        client=demo["client"],
        key="new_comment",
        category="social",
        digest={"window": "1m", "key": "{{ post_id }}"},
        variants=COMMENT_DIGEST_VARIANTS,
    )


def comment(api: APIClient, n: int, post: str) -> None:
    variables = {"post_id": post, "post_title": f"Post {post}", "author": f"a{n}", "text": f"c{n}"}
    body = {"recipient": "user-1", "template": "new_comment", "variables": variables}
    response = api.post(URL, {**body, "channels": ["email"]}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["deliveries"][0]["status"] == "digested"


def sweeps_queued(client: redis.Redis) -> dict[str, int]:
    found: dict[str, int] = {}
    for queue, message in broker.queued_messages(client=client):
        if message["headers"]["task"] == SWEEP_TASK:
            found[queue] = found.get(queue, 0) + 1
    return found


@pytest.mark.django_db
def test_opening_a_window_publishes_nothing(
    api: APIClient,
    comments: Template,
    django_capture_on_commit_callbacks: Callable[..., Any],
    clean_redis: redis.Redis,
) -> None:
    # When three windows open (a fan-out would open one per subscriber)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for n, post in enumerate(["p1", "p2", "p3"]):
            comment(api, n, post)

    # Then no message waits in the broker for them (no countdown, no ETA): only the rows
    assert Digest.objects.filter(closed_at__isnull=True).count() == 3
    assert callbacks == []
    assert broker.queue_depths(client=clean_redis) == dict.fromkeys(ALL_QUEUES, 0)


@pytest.mark.django_db
def test_a_full_batch_closes_that_many_and_queues_the_next_sweep_on_the_timers_queue(
    api: APIClient,
    comments: Template,
    django_capture_on_commit_callbacks: Callable[..., Any],
    clean_redis: redis.Redis,
) -> None:
    # Given three due windows
    for n, post in enumerate(["p1", "p2", "p3"]):
        comment(api, n, post)
    later = timezone.now() + dt.timedelta(minutes=2)
    first_two = sorted(Digest.objects.order_by("closes_at").values_list("id", flat=True)[:2])

    # When a sweep of two runs, it closes the two due first and queues the next sweep
    with django_capture_on_commit_callbacks(execute=True):
        assert digests_close_due(now=later, batch=2) == 2
    assert sorted(Digest.objects.filter(closed_at__isnull=False).values_list("id", flat=True)) == (
        first_two
    )
    assert sweeps_queued(clean_redis) == {TIMERS_QUEUE: 1}

    # And the next one closes the last and, its batch not full, queues nothing more
    clean_redis.flushdb()
    with django_capture_on_commit_callbacks(execute=True):
        assert digests_close_due(now=later, batch=2) == 1
    assert Digest.objects.filter(closed_at__isnull=True).count() == 0
    assert sweeps_queued(clean_redis) == {}


@pytest.mark.django_db(transaction=True)
def test_a_window_locked_elsewhere_is_skipped_not_waited_for(
    api: APIClient, comments: Template
) -> None:
    # Given two due windows, one held by another transaction (a request joining it)
    comment(api, 0, "p1")
    comment(api, 1, "p2")
    held = Digest.objects.get(key="p1")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT id FROM deliveries_digest WHERE id = %s FOR KEY SHARE", [str(held.pk)]
            )

            # When the sweep runs, it closes the free one at once and leaves the held one
            assert digests_close_due(now=timezone.now() + dt.timedelta(minutes=2)) == 1
            still_open = Digest.objects.filter(closed_at__isnull=True)
            assert list(still_open.values_list("key", flat=True)) == ["p1"]
            cursor.execute("ROLLBACK")
    finally:
        other.close()

    # Then, once free, the next sweep closes it
    assert digests_close_due(now=timezone.now() + dt.timedelta(minutes=2)) == 1


def test_the_release_and_the_digest_sweep_go_to_the_timers_queue_the_rest_to_maintenance() -> None:
    router = current_app.amqp.router

    def queue_of(task: str) -> str:
        return str(router.route({}, task)["queue"].name)

    assert queue_of("deliveries.release_due") == TIMERS_QUEUE
    assert queue_of(SWEEP_TASK) == TIMERS_QUEUE
    for task in ("deliveries.reconcile", "deliveries.purge_history", "deliveries.fan_out"):
        assert queue_of(task) == MAINTENANCE_QUEUE
    beat_entry = settings.CELERY_BEAT_SCHEDULE["deliveries-close-digests"]
    assert (beat_entry["task"], beat_entry["schedule"]) == (SWEEP_TASK, 1.0)
