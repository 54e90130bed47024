"""`"send_at": "best_time"`: each recipient's deliveries scheduled at their most engaged local
hour (from their own opens, clicks and reads of the last 90 days, read in one grouped
statement) outside their quiet hours, or sent at once with too little history; quiet hours
applied again at send; an unknown stored timezone read as UTC. The request's other rules (the
holdout, the 400s, idempotency): test_best_time_requests.py; on SQLite:
test_best_time_sqlite.py."""

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

from apps.deliveries.best_time import HISTORY, engagement_by_hour
from apps.deliveries.maintenance import deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryEvent
from apps.deliveries.sending import deliveries_attempt
from apps.recipients.models import Recipient
from tests.factories import NotificationFactory, PreferenceFactory, RecipientFactory
from tests.support.best_time import BODY, KOLKATA, URL, local_days_ago, post, seed


def hour_start(now: dt.datetime, hours: int) -> dt.datetime:
    return now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=hours)


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
    expected = hour_start(local_now, 3)
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
    # 23:50 UTC is 05:20 the next day in Kolkata (a half-hour zone: not the UTC hour + 5)
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
def test_cet_is_read_with_its_summer_time(demo: dict[str, Any]) -> None:
    # CET (like EET, WET, MET) has summer time: 12:20 UTC in July is 14:20 there, not 13:20
    recipient = demo["recipient"]
    Recipient.objects.filter(pk=recipient.pk).update(timezone="CET")
    recipient.refresh_from_db()
    seed(recipient, [dt.datetime(2025, 7, day, 12, 20, tzinfo=dt.UTC) for day in (1, 2, 3)])

    now = dt.datetime(2025, 7, 20, 8, tzinfo=dt.UTC)
    assert engagement_by_hour(recipients=[recipient], now=now) == {recipient.pk: {14: 3}}


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "../etc/passwd", "Europe/Paris\x01"])
def test_a_stored_timezone_zoneinfo_rejects_is_read_as_utc_and_said(
    api: APIClient, demo: dict[str, Any], zone: str
) -> None:
    # Given a recipient whose stored timezone cannot be loaded (written past the API's checks)
    recipient = demo["recipient"]
    now = timezone.now()
    best = (now + dt.timedelta(hours=2)).hour
    seed(recipient, local_days_ago("UTC", best, list(range(1, 7))))
    Recipient.objects.filter(pk=recipient.pk).update(timezone=zone)

    body = post(api, recipient="user-1", send_at="best_time")

    # Then the hours are read in UTC and the timeline says so
    [summary] = body["deliveries"]
    assert summary["status"] == "scheduled"
    assert dt.datetime.fromisoformat(summary["not_before"]) == hour_start(now, 2)
    assert Delivery.objects.get(id=summary["id"]).events.get().detail == (
        f"best time: {best:02d}:00 UTC (6 engagements in 90 days; "
        f"unknown timezone {zone!r}, UTC used)"
    )


@pytest.mark.django_db
def test_too_little_history_sends_at_once_and_says_so(
    api: APIClient, demo: dict[str, Any], settings: Any
) -> None:
    # Given a recipient with 2 opens two hours ahead of now (UTC), under the minimum of 3
    settings.ANALYTICS_BEST_TIME_MIN_EVENTS = 3
    now = timezone.now()
    hour = (now + dt.timedelta(hours=2)).hour
    seed(demo["recipient"], local_days_ago("UTC", hour, [1, 2]))

    body = post(api, recipient="user-1", send_at="best_time")

    [summary] = body["deliveries"]
    assert (summary["status"], summary["not_before"]) == ("queued", None)
    delivery = Delivery.objects.get(id=summary["id"])
    assert [(e.status, e.detail) for e in delivery.events.all()] == [
        ("queued", "best time: too little history (2 engagements), sending now")
    ]
    # With the minimum at 2, the same history is enough: scheduled at that hour
    settings.ANALYTICS_BEST_TIME_MIN_EVENTS = 2
    again = post(api, recipient="user-1", send_at="best_time", variables={"order_id": "A-2"})
    [summary] = again["deliveries"]
    assert summary["status"] == "scheduled"
    assert dt.datetime.fromisoformat(summary["not_before"]) == hour_start(now, 2)
    assert Delivery.objects.get(id=summary["id"]).events.get().detail == (
        f"best time: {hour:02d}:00 UTC (2 engagements in 90 days)"
    )


@pytest.mark.django_db
def test_the_best_hour_outside_the_quiet_hours_is_chosen(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given a recipient most engaged two hours ahead, inside quiet hours from one hour ahead to
    # four hours ahead, and less engaged six hours ahead
    recipient = demo["recipient"]
    now = timezone.now()
    seed(recipient, local_days_ago("UTC", (now + dt.timedelta(hours=2)).hour, list(range(1, 11))))
    other = (now + dt.timedelta(hours=6)).hour
    seed(recipient, local_days_ago("UTC", other, [1, 2, 3, 4]))
    PreferenceFactory(
        recipient=recipient,
        quiet_start=hour_start(now, 1).time(),
        quiet_end=hour_start(now, 4).time(),
    )

    [summary] = post(api, recipient="user-1", send_at="best_time")["deliveries"]

    # Then it is planned at the most engaged hour the recipient may be sent at
    assert summary["status"] == "scheduled"
    assert dt.datetime.fromisoformat(summary["not_before"]) == hour_start(now, 6)
    assert Delivery.objects.get(id=summary["id"]).events.get().detail == (
        f"best time: {other:02d}:00 UTC (14 engagements in 90 days)"
    )


@pytest.mark.django_db
def test_quiet_hours_apply_when_a_best_time_delivery_is_sent(
    api: APIClient, demo: dict[str, Any], clean_redis: Any
) -> None:
    # Given a recipient engaged only in the next hour, and quiet hours from an hour ago until
    # three hours ahead (covering that hour): no hour outside them to choose
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
    at = hour_start(now, 1)
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
            expected[recipient.external_id] = hour_start(local_now, hours_ahead).astimezone(dt.UTC)
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
    events = DeliveryEvent._meta.db_table
    assert sum(f'FROM "{events}"' in q["sql"] for q in queries.captured_queries) == 1
    rows = Delivery.objects.filter(notification_id=body["id"]).select_related("recipient")
    got = {d.recipient.external_id: d.not_before for d in rows}
    assert got == expected
    statuses = Counter(d.status for d in rows)
    assert statuses == {"scheduled": 20, "queued": 10}


@pytest.mark.django_db
def test_the_engagement_query_walks_the_partial_index(demo: dict[str, Any]) -> None:
    # Given 300 recipients with 10 deliveries each, sent every 20 days over 180 days, 3 status
    # events per delivery and an open an hour after the send for one in three (the shape, not
    # the size, of a real table), with statistics
    client = demo["client"]
    notifications = [
        NotificationFactory(client=client, template=demo["template"]) for _ in range(10)
    ]
    recipients = Recipient.objects.bulk_create(
        [Recipient(client=client, external_id=f"s-{i}") for i in range(300)]
    )
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(
                notification=n,
                recipient=r,
                channel="email",
                priority="normal",
                status="sent",
                sent_at=now - dt.timedelta(days=20 * j + 1),
            )
            for r in recipients
            for j, n in enumerate(notifications)
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
        cursor.execute(
            "UPDATE deliveries_deliveryevent e SET at = d.sent_at + interval '1 hour' "
            "FROM deliveries_delivery d WHERE d.id = e.delivery_id"
        )
        cursor.execute("ANALYZE deliveries_delivery, deliveries_deliveryevent")
        # When the planner is asked for five of them
        with CaptureQueriesContext(connection) as queries:
            counts = engagement_by_hour(recipients=recipients[:5], now=now)
        [query] = queries.captured_queries
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # Then it reads the recipients' deliveries by index, and each one's engagement events from
    # the partial index alone (within 90 days: the deliveries of 1 to 81 days ago, 1 in 3 opened)
    recent = [i for i, d in enumerate(deliveries[:50]) if d.sent_at >= now - HISTORY]
    opened = sum(1 for i in recent if i % 3 == 0)
    assert sum(sum(hours.values()) for hours in counts.values()) == opened
    assert "Index Only Scan using deliveryevent_engagement" in plan, plan
    assert "Index Cond: ((delivery_id = deliveries_delivery.id) AND (at >= " in plan, plan


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

    at = hour_start(now, 2)
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
