"""Digests with a real worker and a real beat: notifications join a window per (recipient,
template, channel, key); beat's sweep (every second, on the timers queue) closes it and one
delivery, rendered with `items` and `count`, is sent once. `critical` is never digested; a
cancelled notification leaves its digest.

Windows are long (20 minutes) and each test closes them when it is ready, by moving `closes_at`
to now and letting the sweep find them, as it finds any window whose time came: a 2 s window
raced the test's own steps on a loaded machine. One test uses a 2 s window on purpose, with the
timers worker alone (no maintenance worker, its queue backed up)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery import current_app
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.digests import digests_close_due
from apps.deliveries.models import Delivery, DeliveryStatus, Digest
from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient
from notifier.queues import MAINTENANCE_QUEUE, TIMERS_QUEUE, channel_queues
from tests.factories import COMMENT_DIGEST_VARIANTS, PreferenceFactory, TemplateFactory
from tests.support.processes import Beat, Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]

WINDOW = "20m"


@pytest.fixture
def beat(tmp_path: Any) -> Iterator[Beat]:
    """Celery beat with the project's schedule: the digest sweep every second (its default)."""
    proc = Beat(schedule=str(tmp_path / "beat-schedule"))
    yield proc
    proc.stop()


def close_now(digest_id: object) -> None:
    """The window's time has come: beat's next sweep closes it on the worker."""
    Digest.objects.filter(pk=digest_id, closed_at__isnull=True).update(closes_at=timezone.now())


@pytest.fixture
def comments(demo: dict[str, Any]) -> dict[str, Any]:
    """A `new_comment` template (as seeded) declaring a 20-minute digest keyed by post."""
    TemplateFactory(
        client=demo["client"],
        key="new_comment",
        category="social",
        digest={"window": WINDOW, "key": "{{ post_id }}", "max_items": 3},
        variants=COMMENT_DIGEST_VARIANTS,
    )
    return demo


def comment(
    api: APIClient,
    n: int,
    *,
    post: str = "p1",
    channels: tuple[str, ...] = ("email",),
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "recipient": "user-1",
        "template": "new_comment",
        "variables": {
            "post_id": post,
            "post_title": f"Post {post}",
            "author": f"a{n}",
            "text": f"c{n}",
        },
        "channels": list(channels),
        **extra,
    }
    response = api.post("/api/v1/notifications", body, format="json")
    assert response.status_code == 202, response.content
    return dict(response.json())


def text_of(mail: dict[str, Any]) -> str:
    """The plain-text part of a SendGrid v3 request."""
    return next(str(c["value"]) for c in mail["body"]["content"] if c["type"] == "text/plain")


def digest_sent(digest_id: object) -> Digest | None:
    digest = Digest.objects.filter(pk=digest_id, closed_at__isnull=False).first()
    if digest is None or digest.delivery is None:
        return None
    return digest if digest.delivery.status == DeliveryStatus.SENT else None


def test_five_notifications_become_one_digest_sent_once_after_its_window(
    worker: Worker, beat: Beat, sendgrid: Simulator, api: APIClient, comments: dict[str, Any]
) -> None:
    # Given five comments on one post within the window
    accepted = [comment(api, n) for n in range(5)]
    opened = timezone.now()

    # Then each joined the same open window, nothing is sent yet
    rows = [Delivery.objects.get(id=a["deliveries"][0]["id"]) for a in accepted]
    assert {r.status for r in rows} == {DeliveryStatus.DIGESTED}
    assert accepted[0]["deliveries"][0]["status"] == "digested"
    assert len({r.digest_id for r in rows}) == 1
    digest = Digest.objects.get(pk=rows[0].digest_id)
    assert digest.closed_at is None
    time.sleep(1)
    assert sendgrid.accepted() == []

    assert dt.timedelta(minutes=19) < digest.closes_at - opened <= dt.timedelta(minutes=20)

    # When the window's time comes, beat's sweep closes it
    close_now(digest.pk)
    sent = wait_until(lambda: digest_sent(digest.pk), timeout=30)

    # Then one email went out, once, with count 5 and the newest 3 items
    assert sent.closed_at is not None
    assert sent.closed_at >= sent.closes_at
    assert (sent.outcome, sent.item_count) == ("sent", 5)
    time.sleep(1.5)
    mails = sendgrid.accepted()
    assert len(mails) == 1
    assert mails[0]["body"]["subject"] == "5 new comments on Post p1"
    assert "a4: c4\na3: c3\na2: c2\n(5 in all)" in text_of(mails[0])
    # And the items' timelines say where they went
    for row in rows:
        row.refresh_from_db()
        assert row.status == DeliveryStatus.DIGESTED
        assert row.events.last().detail == (  # type: ignore[union-attr]
            f"sent in digest {digest.pk} as delivery {sent.delivery_id}"
        )
    assert digests_close_due() == 0  # the sweep finds nothing left to close


def test_the_key_splits_digests_and_in_app_makes_one_inbox_row_per_digest(
    worker: Worker, beat: Beat, sendgrid: Simulator, api: APIClient, comments: dict[str, Any]
) -> None:
    # Given comments on two posts, by email and in-app
    for n, post in enumerate(["p1", "p2", "p1"]):
        comment(api, n, post=post, channels=("email", "inapp"))

    # Then there is one window per post and channel
    digests = list(Digest.objects.order_by("key", "channel"))
    assert [(d.key, d.channel) for d in digests] == [
        ("p1", "email"),
        ("p1", "inapp"),
        ("p2", "email"),
        ("p2", "inapp"),
    ]

    # When they close
    for digest in digests:
        close_now(digest.pk)
    for digest in digests:
        wait_until(lambda d=digest: digest_sent(d.pk), timeout=30)

    # Then p1's say 2, p2's say 1: two emails, two inbox rows
    counts = {(d.key, d.channel): d.item_count for d in Digest.objects.all()}
    assert counts == {
        ("p1", "email"): 2,
        ("p1", "inapp"): 2,
        ("p2", "email"): 1,
        ("p2", "inapp"): 1,
    }
    time.sleep(1)
    subjects = sorted(m["body"]["subject"] for m in sendgrid.accepted())
    assert subjects == ["1 new comment on Post p2", "2 new comments on Post p1"]
    inbox = sorted(InboxMessage.objects.values_list("title", "body"))
    assert inbox == [
        ("1 new comment", "a1 on Post p2"),
        ("2 new comments", "a2 and others on Post p1"),
    ]


def test_critical_is_never_digested_and_digest_false_sends_on_its_own(
    worker: Worker, beat: Beat, sendgrid: Simulator, api: APIClient, comments: dict[str, Any]
) -> None:
    # Given a digested comment, a critical one and one sent with "digest": false
    digested = comment(api, 0)
    critical = comment(api, 1, priority="critical")
    alone = comment(api, 2, digest=False)

    # Then the critical and the undigested ones are queued and sent now, each on its own
    assert digested["deliveries"][0]["status"] == "digested"
    for accepted in (critical, alone):
        delivery = accepted["deliveries"][0]
        assert delivery["status"] == "queued"
        wait_until(
            lambda d=delivery["id"]: Delivery.objects.filter(id=d, status="sent").exists(),
            timeout=30,
        )
    assert Delivery.objects.get(id=critical["deliveries"][0]["id"]).digest_id is None

    # And the digest holds only the first
    digest_id = Delivery.objects.get(id=digested["deliveries"][0]["id"]).digest_id
    close_now(digest_id)
    sent = wait_until(lambda: digest_sent(digest_id), timeout=30)
    assert sent.item_count == 1
    time.sleep(1)
    assert len(sendgrid.accepted()) == 3


def test_a_cancelled_notification_leaves_its_digest_and_an_empty_digest_is_not_sent(
    worker: Worker, beat: Beat, sendgrid: Simulator, api: APIClient, comments: dict[str, Any]
) -> None:
    # Given two comments on p1 and one on p2, each window open
    kept = comment(api, 0, post="p1")
    dropped = comment(api, 1, post="p1")
    lonely = comment(api, 2, post="p2")

    # When the second p1 comment and the only p2 comment are cancelled
    for accepted in (dropped, lonely):
        response = api.post(f"/api/v1/notifications/{accepted['id']}/cancel")
        assert response.status_code == 200
        assert response.json()["deliveries"][0]["status"] == "cancelled"

    # Then p1's digest is sent with one item, p2's closes empty and sends nothing
    p1 = Delivery.objects.get(id=kept["deliveries"][0]["id"]).digest_id
    p2 = Delivery.objects.get(id=lonely["deliveries"][0]["id"]).digest_id
    close_now(p1)
    close_now(p2)
    sent = wait_until(lambda: digest_sent(p1), timeout=30)
    assert sent.item_count == 1
    empty = wait_until(
        lambda: Digest.objects.filter(pk=p2, closed_at__isnull=False).first(), timeout=30
    )
    assert (empty.outcome, empty.item_count, empty.delivery_id) == ("empty", 0, None)
    time.sleep(1)
    mails = sendgrid.accepted()
    assert [m["body"]["subject"] for m in mails] == ["1 new comment on Post p1"]
    assert "a1" not in text_of(mails[0])

    # And a cancel after the digest was sent changes nothing
    response = api.post(f"/api/v1/notifications/{kept['id']}/cancel")
    assert response.json()["deliveries"][0]["status"] == "digested"


def test_daily_cadence_closes_at_the_recipients_local_time(
    worker: Worker, sendgrid: Simulator, api: APIClient, comments: dict[str, Any]
) -> None:
    # Given a recipient in Tokyo who wants social notifications daily at 09:00 their time
    recipient = comments["recipient"]
    assert isinstance(recipient, Recipient)
    recipient.timezone = "Asia/Tokyo"
    recipient.save()
    PreferenceFactory(recipient=recipient, digest={"social": "daily@09:00"})

    # When two comments arrive
    first = comment(api, 0)
    comment(api, 1)

    # Then they wait for the next 09:00 in Tokyo (the template's 20-minute window does not apply)
    digest = Digest.objects.get(pk=Delivery.objects.get(id=first["deliveries"][0]["id"]).digest_id)
    local_close = digest.closes_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local_close.hour, local_close.minute, digest.cadence) == (9, 0, "daily@09:00")
    assert dt.timedelta(0) < digest.closes_at - timezone.now() <= dt.timedelta(days=1)
    time.sleep(1)
    assert Digest.objects.get(pk=digest.pk).closed_at is None
    assert sendgrid.accepted() == []

    # And at 09:00 the sweep closes it (nothing for it waits in the broker: a Redis flush
    # loses nothing) and the worker sends one email with both
    assert digests_close_due(now=digest.closes_at - dt.timedelta(seconds=1)) == 0
    assert digests_close_due(now=digest.closes_at) == 1
    sent = wait_until(lambda: digest_sent(digest.pk), timeout=30)
    assert sent.item_count == 2
    time.sleep(1)
    assert [m["body"]["subject"] for m in sendgrid.accepted()] == ["2 new comments on Post p1"]


def test_a_short_window_closes_on_time_on_the_timers_worker_while_maintenance_is_backed_up(
    worker_factory: Callable[..., Worker],
    beat: Beat,
    sendgrid: Simulator,
    api: APIClient,
    comments: dict[str, Any],
) -> None:
    # Given the timers and email workers only: the maintenance queue has a backlog nobody takes
    # (as behind a fan-out's slices or the retention purge)
    worker_factory(queues=[TIMERS_QUEUE, *channel_queues("email")], name="timers-email")
    for _ in range(20):
        current_app.send_task("deliveries.reconcile", queue=MAINTENANCE_QUEUE)

    # When two comments join a 2-second window
    first = comment(api, 0, digest={"window": "2s", "key": "{{ post_id }}"})
    comment(api, 1, digest={"window": "2s", "key": "{{ post_id }}"})
    digest_id = Delivery.objects.get(id=first["deliveries"][0]["id"]).digest_id

    # Then beat's sweep on the timers worker closes it and the digest is sent, once
    sent = wait_until(lambda: digest_sent(digest_id), timeout=30)
    assert sent.item_count == 2
    # (the sweep runs every second; the bound is loose for a loaded 2-core machine)
    assert sent.closed_at - sent.closes_at < dt.timedelta(seconds=10)
    time.sleep(1)
    assert [m["body"]["subject"] for m in sendgrid.accepted()] == ["2 new comments on Post p1"]
