"""Digests at the API and in the services (no worker): validation, joining a window, closing it
(one by one, and by the sweep), cancel, quiet hours on the digest."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import metrics
from apps.deliveries import digests as digests_module
from apps.deliveries.digests import digest_close, digests_close_due
from apps.deliveries.models import Delivery, DeliveryStatus, Digest, Notification
from apps.templates.models import Template
from tests.apps.deliveries.test_notifications_api import assert_error_shape
from tests.factories import COMMENT_DIGEST_VARIANTS, PreferenceFactory, TemplateFactory

URL = "/api/v1/notifications"
DIGEST = {"window": "1m", "key": "{{ post_id }}", "max_items": 2}


@pytest.fixture
def comments(demo: dict[str, Any]) -> Template:
    return TemplateFactory(  # type: ignore[no-any-return]
        client=demo["client"],
        key="new_comment",
        category="social",
        digest=DIGEST,
        variants=COMMENT_DIGEST_VARIANTS,
    )


def comment(api: APIClient, n: int, post: str = "p1", **extra: Any) -> Any:
    variables = {"post_id": post, "post_title": f"Post {post}", "author": f"a{n}", "text": f"c{n}"}
    body = {
        "recipient": "user-1",
        "template": "new_comment",
        "variables": variables,
        "channels": ["email"],
        **extra,
    }
    return api.post(URL, body, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ({"window": "soon"}, 'window: a duration such as "90s", "10m", "2h", "1d" or "1h30m"'),
        ({"window": "0s"}, "window: between 1s and 7d"),
        ({"window": "1h", "max_items": 0}, "max_items: an integer from 1 to 500"),
        ({"window": "1h", "per": "post"}, "digest: unknown field(s): per"),
        ({}, 'window: a duration such as "90s", "10m", "2h", "1d" or "1h30m"'),
        (True, "digest: an object {window, key, max_items}, or false"),
        ("1h", "digest: an object {window, key, max_items}, or false"),
    ],
)
def test_a_bad_digest_is_a_400_naming_the_field_and_nothing_is_created(
    api: APIClient, comments: Template, digest: object, message: str
) -> None:
    response = comment(api, 0, digest=digest)

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert response.json()["fields"] == {"digest": [message]}
    assert Notification.objects.count() == 0
    assert Digest.objects.count() == 0


@pytest.mark.django_db
def test_a_digest_key_that_does_not_parse_is_a_400(api: APIClient, comments: Template) -> None:
    response = comment(api, 0, digest={"window": "1m", "key": "{% if post_id %}"})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["digest"]
    assert response.json()["fields"]["digest"][0].startswith("key: ")
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_template_put_stores_a_digest_and_rejects_a_bad_one(
    api: APIClient, demo: dict[str, Any]
) -> None:
    body = {"category": "social", "variants": COMMENT_DIGEST_VARIANTS, "digest": DIGEST}

    saved = api.put("/api/v1/templates/new_comment", body, format="json")
    bad = api.put("/api/v1/templates/other", {**body, "digest": {"window": "1y"}}, format="json")

    assert saved.status_code == 201, saved.content
    assert saved.json()["digest"] == DIGEST
    # (what a request must give: not the digest's `items` and `count`)
    assert saved.json()["required_variables"] == ["post_title"]
    assert api.get("/api/v1/templates/new_comment").json()["digest"] == DIGEST
    assert bad.status_code == 400
    assert list(bad.json()["fields"]) == ["digest"]
    assert not Template.objects.filter(key="other").exists()


@pytest.mark.django_db
def test_items_and_count_are_required_unless_a_digest_supplies_them(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given a template reading `items` and `count` with no digest declared
    TemplateFactory(
        client=demo["client"],
        key="new_comment",
        category="social",
        variants=COMMENT_DIGEST_VARIANTS,
    )

    # Then a plain request must give them; one declaring a digest need not
    plain = comment(api, 0)
    digested = comment(api, 1, digest={"window": "1m"})

    assert plain.status_code == 400
    assert plain.json()["fields"] == {
        "variables": ["missing variable 'count'", "missing variable 'items'"]
    }
    assert digested.status_code == 202, digested.content
    assert digested.json()["deliveries"][0]["status"] == "digested"


@pytest.mark.django_db
def test_notifications_join_one_window_per_key_and_close_into_one_delivery(
    api: APIClient,
    comments: Template,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Given three comments on p1 and one on p2
    with django_capture_on_commit_callbacks(execute=False) as published_on_join:
        ids = [comment(api, n, post=p).json()["id"] for n, p in enumerate(["p1", "p1", "p2", "p1"])]

    # Then two windows opened, and nothing was published (the sweep finds them in the table)
    p1, p2 = Digest.objects.get(key="p1"), Digest.objects.get(key="p2")
    assert Delivery.objects.filter(digest=p1, status=DeliveryStatus.DIGESTED).count() == 3
    assert published_on_join == []
    detail = api.get(f"{URL}/{ids[0]}").json()["deliveries"][0]
    assert (detail["status"], detail["reason"]) == ("digested", "joined a digest")
    assert detail["digest"]["id"] == str(p1.pk)
    assert detail["timeline"][0]["detail"].startswith(f"joined digest {p1.pk} (closes ")

    # When p1's window is not yet due, closing does nothing; when due, one delivery is made
    assert digest_close(digest_id=str(p1.pk)) == ""
    with django_capture_on_commit_callbacks(execute=False) as published:
        assert digest_close(digest_id=str(p1.pk), now=p1.closes_at) == "sent"
    assert len(published) == 1

    # Then it carries the newest max_items (2) items and the count of all three
    p1.refresh_from_db()
    assert p1.delivery is not None
    assert (p1.outcome, p1.item_count, p1.delivery.status) == ("sent", 3, "queued")
    variables = p1.delivery.notification.variables
    assert variables["count"] == 3
    assert [item["author"] for item in variables["items"]] == ["a3", "a1"]
    assert variables["author"] == "a3"  # the newest's own variables beside them
    assert set(variables["items"][0]) == {
        "post_id",
        "post_title",
        "author",
        "text",
        "at",
        "notification_id",
    }
    assert variables["items"][0]["notification_id"] == ids[3]
    # And closing again is a no-op
    assert digest_close(digest_id=str(p1.pk), now=p1.closes_at) == ""
    assert Digest.objects.get(pk=p2.pk).closed_at is None


@pytest.mark.django_db
def test_the_sweep_closes_a_window_once_it_is_due(api: APIClient, comments: Template) -> None:
    # Given an open window (its row is all there is: nothing waits in the broker)
    comment(api, 0)
    digest = Digest.objects.get()

    # Then the sweep leaves it until its time, then closes it
    assert digests_close_due(now=digest.closes_at - dt.timedelta(seconds=1)) == 0
    assert digests_close_due(now=digest.closes_at + dt.timedelta(seconds=1)) == 1
    digest.refresh_from_db()
    assert (digest.outcome, digest.item_count) == ("sent", 1)
    # And a later comment opens a new window
    comment(api, 1)
    assert Digest.objects.filter(closed_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_cancel_leaves_an_open_digest_and_an_empty_digest_sends_nothing(
    api: APIClient, comments: Template
) -> None:
    # Given one comment in an open window
    notification_id = comment(api, 0).json()["id"]
    digest = Digest.objects.get()

    # When it is cancelled
    response = api.post(f"{URL}/{notification_id}/cancel")

    # Then it left the window, and the window closes empty without a delivery
    delivery = response.json()["deliveries"][0]
    assert (delivery["status"], delivery["reason"]) == ("cancelled", "cancelled by client")
    assert delivery["timeline"][-1]["detail"] == f"cancelled by client; left digest {digest.pk}"
    assert digest_close(digest_id=str(digest.pk), now=digest.closes_at) == "empty"
    digest.refresh_from_db()
    assert (digest.item_count, digest.delivery) == (0, None)
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_quiet_hours_defer_the_digest_delivery_not_each_item(
    api: APIClient, comments: Template, demo: dict[str, Any]
) -> None:
    # Given a recipient inside quiet hours all day long but a minute
    now = timezone.now()
    start = (now - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + dt.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    PreferenceFactory(recipient=demo["recipient"], quiet_start=start, quiet_end=end)

    # When comments arrive, they join the digest (not deferred one by one)
    statuses = [comment(api, n).json()["deliveries"][0]["status"] for n in range(2)]
    assert statuses == ["digested", "digested"]

    # Then the digest's own delivery is the one deferred
    digest = Digest.objects.get()
    digest_close(digest_id=str(digest.pk), now=digest.closes_at)
    digest.refresh_from_db()
    assert digest.delivery is not None
    assert (digest.delivery.status, digest.delivery.reason) == ("deferred", "quiet hours")


@pytest.mark.django_db
def test_a_day_long_window_is_closed_by_the_sweep_at_its_time(
    api: APIClient, comments: Template
) -> None:
    # Given a day-long window
    response = comment(api, 0, digest={"window": "1d"})
    assert response.json()["deliveries"][0]["status"] == "digested"
    digest = Digest.objects.get()
    assert digest.closes_at - digest.opened_at > dt.timedelta(hours=23)

    # And the sweep leaves it until its time, then closes it into one delivery
    assert digests_close_due(now=digest.closes_at - dt.timedelta(seconds=1)) == 0
    assert digests_close_due(now=digest.closes_at) == 1
    digest.refresh_from_db()
    assert (digest.outcome, digest.item_count) == ("sent", 1)
    assert digest.delivery is not None
    assert digest.delivery.status == DeliveryStatus.QUEUED


@pytest.mark.django_db
def test_one_window_failing_to_close_does_not_stall_the_sweep(
    api: APIClient, comments: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three due windows, one of which fails to close (its delivery cannot be made)
    for n, post in enumerate(["p1", "p2", "p3"]):
        comment(api, n, post=post)
    broken = Digest.objects.get(key="p2")
    real = digests_module.digest_deliver

    def deliver(digest: Digest, **kwargs: Any) -> Delivery:
        if digest.pk == broken.pk:
            raise RuntimeError("boom")
        return real(digest, **kwargs)

    monkeypatch.setattr(digests_module, "digest_deliver", deliver)
    later = timezone.now() + dt.timedelta(minutes=2)

    # When the sweep runs, the others close and the broken one stays open
    assert digests_close_due(now=later) == 2
    assert set(Digest.objects.filter(closed_at__isnull=True).values_list("key", flat=True)) == {
        "p2"
    }
    assert Digest.objects.filter(outcome="sent").count() == 2

    # And once it can close, the sweep after its backoff (5 s) closes it
    monkeypatch.setattr(digests_module, "digest_deliver", real)
    assert digests_close_due(now=later) == 0
    assert digests_close_due(now=later + dt.timedelta(seconds=5)) == 1
    assert Digest.objects.filter(closed_at__isnull=True).count() == 0


# The 503 a request answers when the window it joins closes under each of its tries
# (digest_windows.TRIES): nothing was created, and the client retries.
WINDOWS_CLOSING = {
    "code": "unavailable",
    "message": "Digest windows were closing while this request joined them; retry.",
    "fields": {},
}
POST_TRIES = 10  # a client's tries per comment: far more than contention ever needs


@pytest.mark.django_db(transaction=True)
def test_parallel_notifications_open_one_window_and_all_join_it_while_it_closes(
    api_key: tuple[Any, str], comments: Template, clean_redis: Any
) -> None:
    # Given 12 comments posted at once from their own connections, while the sweep closes
    # whatever window is due (each close racing the joins). The sweep's clock is 2 minutes
    # ahead, so every window is due the moment it commits: a request can lose the race for
    # all its tries (more likely on a loaded machine) and is then told to retry, and does, as
    # a client would. (On a real clock a window is due only at its end: 1s at the least, or
    # its cadence's hour.)
    results: list[int] = []
    refusals: list[tuple[dict[str, Any], str | None]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(13)
    # The test client builds its middleware on a client's first request; django-prometheus'
    # metrics are registered then, once per process, which 12 threads at once would race.
    assert APIClient().get("/healthz").status_code == 200

    def post(n: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
        try:
            barrier.wait(timeout=60)
            for _ in range(POST_TRIES):
                response = comment(client, n)
                if response.status_code != 503:
                    break
                with lock:
                    refusals.append((response.json(), response.get("Retry-After")))
            with lock:
                results.append(response.status_code)
        finally:
            connections.close_all()

    def sweep() -> None:
        try:
            barrier.wait(timeout=60)
            for _ in range(20):
                digests_close_due(now=timezone.now() + dt.timedelta(minutes=2))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(12)]
    threads.append(threading.Thread(target=sweep))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    digests_close_due(now=timezone.now() + dt.timedelta(minutes=2))

    # Then every comment was accepted (any refusal on the way was that retryable 503, which
    # left nothing behind), and each of the 12 items is in exactly one closed window whose
    # count includes it
    assert results == [202] * 12
    retry_after = str(settings.DEPENDENCY_RETRY_AFTER_SECONDS)
    assert all(refusal == (WINDOWS_CLOSING, retry_after) for refusal in refusals), refusals
    items = Delivery.objects.filter(status=DeliveryStatus.DIGESTED, digest__isnull=False)
    assert items.count() == 12
    closed = list(Digest.objects.all())
    sent = [d for d in closed if d.outcome == Digest.Outcome.SENT]
    assert Notification.objects.count() == 12 + len(sent)  # the comments', each digest's own
    assert all(d.closed_at is not None for d in closed)
    assert sum(d.item_count for d in closed) == 12
    for digest in closed:
        assert digest.item_count == items.filter(digest=digest).count()


@pytest.mark.django_db
def test_metrics_count_joined_items_and_windows_opened_sent_and_empty(
    api: APIClient, comments: Template
) -> None:
    opened = metrics.DIGESTS.labels(channel="email", outcome="opened")
    sent = metrics.DIGESTS.labels(channel="email", outcome="sent")
    empty = metrics.DIGESTS.labels(channel="email", outcome="empty")
    joined = metrics.DIGEST_ITEMS.labels(channel="email")
    before = [c._value.get() for c in (opened, sent, empty, joined)]

    comment(api, 0, post="p1")
    comment(api, 1, post="p1")
    cancelled = comment(api, 2, post="p2").json()["id"]
    api.post(f"{URL}/{cancelled}/cancel")
    digests_close_due(now=timezone.now() + dt.timedelta(minutes=2))

    after = [c._value.get() for c in (opened, sent, empty, joined)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 3]
