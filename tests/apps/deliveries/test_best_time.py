"""`"send_at": "best_time"`: each recipient's deliveries scheduled at their most engaged local
hour (from their own opens, clicks and reads of the last 90 days, read in one grouped
statement), or sent at once with too little history; quiet hours applied again at send; and the
send-time A/B test (`best_time_holdout`)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.best_time import engagement_by_hour
from apps.deliveries.maintenance import deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus, Notification
from apps.deliveries.sending import deliveries_attempt
from apps.recipients.models import Recipient
from notifier.experiments import assign
from tests.factories import (
    DeliveryFactory,
    NotificationFactory,
    PreferenceFactory,
    RecipientFactory,
    TemplateVariantFactory,
)

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["email"],
}
BAD_SEND_AT = 'Must be a date-time (ISO 8601, e.g. 2030-01-01T09:00:00Z) or "best_time".'
KOLKATA = "Asia/Kolkata"  # UTC+05:30, no DST: a local hour is not a UTC hour


def seed(recipient: Recipient, at: list[dt.datetime], status: str = "opened") -> None:
    """Engagement events of `recipient` at these times (one delivery of an earlier notification)."""
    delivery = DeliveryFactory(
        notification=NotificationFactory(client=recipient.client),
        recipient=recipient,
        status=DeliveryStatus.SENT,
    )
    for when in at:
        event = DeliveryEvent.objects.create(delivery=delivery, status=status)
        DeliveryEvent.objects.filter(pk=event.pk).update(at=when)  # `at` is auto_now_add


def local_days_ago(zone: str, hour: int, days: list[int], minute: int = 20) -> list[dt.datetime]:
    """`hour`:`minute` local time, so many days ago."""
    today = timezone.now().astimezone(ZoneInfo(zone)).date()
    return [
        dt.datetime.combine(today - dt.timedelta(days=d), dt.time(hour, minute), ZoneInfo(zone))
        for d in days
    ]


def post(api: APIClient, **extra: Any) -> dict[str, Any]:
    response = api.post(URL, {**BODY, **extra}, format="json")
    assert response.status_code == 202, response.content
    return dict(response.json())


@pytest.mark.django_db
def test_best_time_schedules_at_the_recipients_most_engaged_local_hour(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given a recipient in Kolkata who opens (and clicks) mostly at a local hour three hours ahead
    recipient = demo["recipient"]
    recipient.timezone = KOLKATA
    recipient.save()
    local_now = timezone.now().astimezone(ZoneInfo(KOLKATA))
    best = (local_now.hour + 3) % 24
    other = (local_now.hour + 6) % 24
    seed(recipient, local_days_ago(KOLKATA, best, list(range(1, 11))))
    seed(recipient, local_days_ago(KOLKATA, best, [11, 12]), status="clicked")
    seed(recipient, local_days_ago(KOLKATA, other, [1, 2, 3]), status="read")
    # ...and what must not count: more opens at another hour but over 90 days ago, sends
    # (not engagement) at that hour, and someone else's opens
    seed(recipient, local_days_ago(KOLKATA, other, list(range(91, 111))))
    seed(recipient, local_days_ago(KOLKATA, other, list(range(1, 30))), status="delivered")
    stranger = RecipientFactory(client=demo["client"], external_id="user-2")
    seed(stranger, local_days_ago(KOLKATA, other, list(range(1, 30))))

    body = post(api, recipient="user-1", send_at="best_time")

    # Then its delivery is scheduled at the next start of that local hour
    expected = local_now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=3)
    [summary] = body["deliveries"]
    assert body["send_at"] == "best_time"
    assert (summary["status"], summary["variant"]) == ("scheduled", "")
    assert dt.datetime.fromisoformat(summary["not_before"]) == expected
    delivery = Delivery.objects.get(id=summary["id"])
    assert (delivery.status, delivery.not_before, delivery.variant) == ("scheduled", expected, "")
    [event] = delivery.events.all()
    assert (event.status, event.detail) == (
        "scheduled",
        f"best time: {best:02d}:00 {KOLKATA} (15 engagements in 90 days)",
    )
    # And the GET shows the choice on the notification, the delivery and its timeline
    detail = api.get(f"{URL}/{body['id']}").json()
    assert (detail["send_at"], detail["best_time_holdout"]) == ("best_time", None)
    [shown] = detail["deliveries"]
    assert dt.datetime.fromisoformat(shown["not_before"]) == expected
    assert shown["timeline"][0]["detail"] == event.detail
    listed = api.get(URL).json()["results"][0]
    assert (listed["id"], listed["send_at"]) == (body["id"], "best_time")


@pytest.mark.django_db
def test_the_hour_counts_are_local_and_within_90_days(demo: dict[str, Any]) -> None:
    recipient = demo["recipient"]
    recipient.timezone = KOLKATA
    recipient.save()
    # 23:50 UTC is 05:20 the next day in Kolkata
    today = timezone.now().date()
    seed(
        recipient,
        [
            dt.datetime.combine(today - dt.timedelta(days=d), dt.time(23, 50), dt.UTC)
            for d in (2, 3)
        ],
    )
    # 06:20 local 1 and 89 days ago count, 91 days ago does not
    seed(recipient, local_days_ago(KOLKATA, 6, [1, 89, 91]))

    counts = engagement_by_hour(recipients=[recipient], now=timezone.now())

    assert counts == {recipient.pk: {5: 2, 6: 2}}


@pytest.mark.django_db
def test_too_little_history_sends_at_once_and_says_so(
    api: APIClient, demo: dict[str, Any], settings: Any
) -> None:
    # Given a recipient with 2 opens, under the minimum of 3
    settings.ANALYTICS_BEST_TIME_MIN_EVENTS = 3
    seed(demo["recipient"], local_days_ago("UTC", 4, [1, 2]))

    body = post(api, recipient="user-1", send_at="best_time")

    [summary] = body["deliveries"]
    assert (summary["status"], summary["not_before"]) == ("queued", None)
    delivery = Delivery.objects.get(id=summary["id"])
    assert [(e.status, e.detail) for e in delivery.events.all()] == [
        ("queued", "best time: too little history (2 engagements), sending now")
    ]
    # With the minimum at 2, the same history is enough
    settings.ANALYTICS_BEST_TIME_MIN_EVENTS = 2
    again = post(api, recipient="user-1", send_at="best_time", variables={"order_id": "A-2"})
    assert again["deliveries"][0]["status"] in {"scheduled", "queued"}
    detail = Delivery.objects.get(id=again["deliveries"][0]["id"]).events.get().detail
    assert detail.startswith("best time: 04:00 UTC (2 engagements in 90 days)")


@pytest.mark.django_db
def test_quiet_hours_apply_when_a_best_time_delivery_is_sent(
    api: APIClient, demo: dict[str, Any], clean_redis: Any
) -> None:
    # Given a recipient whose best hour is the next one, and quiet hours from an hour ago
    # until three hours ahead (covering that hour)
    recipient = demo["recipient"]
    now = timezone.now()
    best = (now + dt.timedelta(hours=1)).hour
    seed(recipient, local_days_ago("UTC", best, list(range(1, 8))))
    quiet_end = (now + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    PreferenceFactory(
        recipient=recipient,
        quiet_start=(now - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_end=quiet_end.time(),
    )

    # When it is posted with best_time: scheduled at the best hour (as a send_at would be)
    [summary] = post(api, recipient="user-1", send_at="best_time")["deliveries"]
    at = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    assert (summary["status"], dt.datetime.fromisoformat(summary["not_before"])) == (
        "scheduled",
        at,
    )

    # Then at that time it is released, and the check just before sending defers it to the end
    # of the quiet hours, without an attempt
    assert deliveries_release_due(now=at) == 1
    outcome = deliveries_attempt(delivery_ids=[summary["id"]])[summary["id"]]
    delivery = Delivery.objects.get(id=summary["id"])
    assert (outcome.result, delivery.status, delivery.reason) == (
        "deferred",
        "deferred",
        "quiet hours",
    )
    assert (delivery.not_before, delivery.attempts) == (quiet_end, 0)


@pytest.mark.django_db
def test_bulk_reads_every_recipients_history_in_one_statement(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given 30 recipients: ten in Kolkata with a history, ten in New York with one, ten without
    client = demo["client"]
    expected: dict[str, dt.datetime | None] = {}
    for i in range(30):
        zone = [KOLKATA, "America/New_York", "UTC"][i % 3]
        recipient = RecipientFactory(client=client, external_id=f"r-{i}", timezone=zone)
        local_now = timezone.now().astimezone(ZoneInfo(zone))
        if zone != "UTC":
            hours_ahead = 1 + i % 5
            seed(
                recipient,
                local_days_ago(zone, (local_now.hour + hours_ahead) % 24, [1, 2, 3, 4, 5, 6]),
            )
            top = local_now.replace(minute=0, second=0, microsecond=0)
            expected[recipient.external_id] = (top + dt.timedelta(hours=hours_ahead)).astimezone(
                dt.UTC
            )
        else:
            expected[recipient.external_id] = None
    assert api.post(URL, {**BODY, "recipient": "user-1"}, format="json").status_code == 202

    # When one request names them all (and the key and template cache are warm)
    with CaptureQueriesContext(connection) as queries:
        body = post(api, recipients=list(expected), send_at="best_time")
    words = [q["sql"].split(" ", 1)[0] for q in queries.captured_queries]
    statements = [w for w in words if w not in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}]

    # Then one more SELECT than without best_time (the recipients, the history), one INSERT
    assert statements == ["SELECT", "SELECT", "WITH"]
    assert sum("unnest(" in q["sql"] for q in queries.captured_queries) == 1
    rows = Delivery.objects.filter(notification_id=body["id"]).select_related("recipient")
    got = {d.recipient.external_id: d.not_before for d in rows}
    assert got == expected
    statuses = Counter(d.status for d in rows)
    assert statuses == {"scheduled": 20, "queued": 10}


@pytest.mark.django_db
def test_the_engagement_query_walks_the_partial_index(demo: dict[str, Any]) -> None:
    # Given 300 recipients with 5 deliveries each, 3 status events per delivery and an open
    # for one in three (the shape, not the size, of a real table), with statistics
    client = demo["client"]
    notifications = [
        NotificationFactory(client=client, template=demo["template"]) for _ in range(5)
    ]
    recipients = Recipient.objects.bulk_create(
        [Recipient(client=client, external_id=f"s-{i}") for i in range(300)]
    )
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(notification=n, recipient=r, channel="email", priority="normal", status="sent")
            for r in recipients
            for n in notifications
        ]
    )
    DeliveryEvent.objects.bulk_create(
        [
            DeliveryEvent(delivery=d, status=status)
            for i, d in enumerate(deliveries)
            for status in ["queued", "sent", "delivered", *(["opened"] if i % 3 == 0 else [])]
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deliveries_delivery, deliveries_deliveryevent")
        # When the planner is asked for five of them
        with CaptureQueriesContext(connection) as queries:
            counts = engagement_by_hour(recipients=recipients[:5], now=timezone.now())
        [query] = queries.captured_queries
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # Then it reads the engagement events from the partial index, per delivery
    assert sum(sum(hours.values()) for hours in counts.values()) == 9  # 25 deliveries, 1 in 3
    assert "Index Only Scan using deliveryevent_engagement" in plan, plan


@pytest.mark.django_db
def test_a_holdout_splits_1000_recipients_stickily(api: APIClient, demo: dict[str, Any]) -> None:
    client = demo["client"]
    Recipient.objects.bulk_create(
        [
            Recipient(client=client, external_id=f"h-{i}", email=f"h{i}@example.com")
            for i in range(1000)
        ]
    )
    ids = [f"h-{i}" for i in range(1000)]

    first = post(api, recipients=ids, send_at="best_time", best_time_holdout=30)
    again = post(
        api, recipients=ids, send_at="best_time", best_time_holdout=30, variables={"order_id": "2"}
    )

    def arms(notification_id: str) -> dict[str, str]:
        rows = Delivery.objects.filter(notification_id=notification_id)
        return dict(rows.values_list("recipient__external_id", "variant"))

    split = arms(first["id"])
    counts = Counter(split.values())
    assert set(counts) == {"immediate", "best_time"}
    assert abs(counts["immediate"] - 300) <= 45, counts  # within 4.5 points of 30%
    assert arms(again["id"]) == split  # sticky
    pks = dict(Recipient.objects.filter(client=client).values_list("external_id", "pk"))
    test_key = "best_time:order_shipped"
    weights = [("immediate", 30), ("best_time", 70)]
    assert split == {ext: assign(test_key, str(pks[ext]), weights) for ext in ids}
    notification = Notification.objects.get(id=first["id"])
    assert (notification.send_time, notification.best_time_holdout) == ("best_time", 30)
    held = Delivery.objects.filter(notification_id=first["id"], variant="immediate").first()
    assert held is not None
    assert held.events.get().detail == "best time: held out (A/B test), sending now"


@pytest.mark.django_db
def test_a_holdout_is_refused_beside_a_copy_test(api: APIClient, demo: dict[str, Any]) -> None:
    version = demo["template"].versions.get()
    TemplateVariantFactory(version=version, channel="email", label="B", body="Other {{ order_id }}")

    response = api.post(
        URL,
        {**BODY, "recipient": "user-1", "send_at": "best_time", "best_time_holdout": 10},
        "json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "best_time_holdout": ["not with the labelled variants on email (one A/B test at a time)"]
    }
    assert Notification.objects.count() == 0
    # Without the holdout, or on another channel, it is accepted
    assert post(api, recipient="user-1", send_at="best_time")["send_at"] == "best_time"
    sms = post(api, recipient="user-1", send_at="best_time", best_time_holdout=10, channels=["sms"])
    assert sms["deliveries"][0]["variant"] in {"best_time", "immediate"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"send_at": "soon"}, "send_at", BAD_SEND_AT),
        ({"send_at": "Best_Time"}, "send_at", None),
        ({"send_at": 12}, "send_at", BAD_SEND_AT),
        ({"send_at": ["best_time"]}, "send_at", BAD_SEND_AT),
        ({"send_at": None}, "send_at", "This field may not be null."),
        ({"send_at": "best_time", "best_time_holdout": 101}, "best_time_holdout", None),
        ({"send_at": "best_time", "best_time_holdout": -1}, "best_time_holdout", None),
        (
            {"send_at": "best_time", "best_time_holdout": "10"},
            "best_time_holdout",
            "Must be a JSON integer.",
        ),
        (
            {"send_at": "best_time", "best_time_holdout": 10.5},
            "best_time_holdout",
            "Must be a JSON integer.",
        ),
        (
            {"send_at": "best_time", "best_time_holdout": True},
            "best_time_holdout",
            "Must be a JSON integer.",
        ),
        ({"best_time_holdout": 10}, "best_time_holdout", 'only with "send_at": "best_time"'),
        (
            {"send_at": "2030-01-01T00:00:00Z", "best_time_holdout": 10},
            "best_time_holdout",
            'only with "send_at": "best_time"',
        ),
        (
            {
                "send_at": "best_time",
                "escalation": [{"after": "1h", "channels": ["sms"], "unless": "read"}],
            },
            "send_at",
            '"best_time" cannot be combined with `escalation`',
        ),
    ],
)
def test_bad_send_time_shapes_are_a_clear_400(
    api: APIClient, demo: dict[str, Any], extra: dict[str, Any], field: str, message: str | None
) -> None:
    response = api.post(URL, {**BODY, "recipient": "user-1", **extra}, format="json")

    assert response.status_code == 400, response.content
    fields = response.json()["fields"]
    assert list(fields) == [field], fields
    if message is not None:
        assert fields[field] == [message]
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_best_time_for_a_topic_is_refused(api: APIClient, demo: dict[str, Any]) -> None:
    response = api.post(
        URL,
        {**BODY, "topic": "launches", "send_at": "best_time"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "send_at": ['"best_time" is not available for a topic: list the recipients']
    }


@pytest.mark.django_db
def test_the_idempotency_hash_tells_best_time_from_now(
    api: APIClient, demo: dict[str, Any]
) -> None:
    assert post(api, recipient="user-1", idempotency_key="k-1")["status"] == "accepted"

    response = api.post(
        URL,
        {**BODY, "recipient": "user-1", "idempotency_key": "k-1", "send_at": "best_time"},
        "json",
    )

    assert response.status_code == 409


@pytest.mark.django_db
def test_a_fallback_made_at_creation_waits_for_the_best_time_too(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given a recipient without an email address, most engaged two hours from now
    recipient = demo["recipient"]
    recipient.email = ""
    recipient.save()
    now = timezone.now()
    seed(recipient, local_days_ago("UTC", (now + dt.timedelta(hours=2)).hour, list(range(1, 6))))

    body = post(api, recipient="user-1", send_at="best_time", fallback=["sms"])

    at = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=2)
    got = {
        (d["channel"], d["status"], d["not_before"] and dt.datetime.fromisoformat(d["not_before"]))
        for d in body["deliveries"]
    }
    assert got == {("email", "skipped", None), ("sms", "scheduled", at)}
    sms = Delivery.objects.get(notification_id=body["id"], channel="sms")
    assert sms.events.get().detail == (
        f"best time: {at:%H}:00 UTC (5 engagements in 90 days); "
        "fallback: every requested channel failed; accepted"
    )
