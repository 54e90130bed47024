"""The analytics aggregator's queue (apps/analytics): the timeline and attempt rows not yet
folded into the rollup (`counted` false, a partial index each). `events_take` and
`attempts_take` take the next ones for the caller's transaction, mark them counted and return
what the fold needs; the caller adds them to the rollup in the same transaction, so a row is
counted exactly once (a rolled-back fold leaves them uncounted).

On PostgreSQL one statement each: the rows picked `FOR UPDATE SKIP LOCKED` (a second fold at
once takes the next ones), marked by `UPDATE ... RETURNING`, joined and probed in the same
statement (a separate lock, read and update cost about twice as much). SQLite (`make run`,
IMMEDIATE transactions: one writer at a time) reads, then marks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import Case, Exists, F, OuterRef, When

from apps.deliveries.models import ACCEPTED, Attempt, DeliveryEvent, DeliveryStatus

# The statuses a timeline row can count in (apps/analytics/increments.py: the pre-send
# counters, the `sent` group, the later ones); a row in any other status counts only as its
# delivery's creation (`accepted`).
COUNTING_STATUSES = frozenset(
    {
        *ACCEPTED,
        DeliveryStatus.FAILED,
        DeliveryStatus.DEAD,
        DeliveryStatus.SKIPPED,
        DeliveryStatus.CANCELLED,
        DeliveryStatus.DIGESTED,
    }
)


def event_counts(status: str, *, creation: bool, record_only: bool) -> bool:
    """Whether a new timeline row can ever add to the rollup, so it must wait in the queue
    (`counted` false): a delivery's creation always (it is `accepted`, whatever its status),
    otherwise a row in COUNTING_STATUSES that is not written only to record (the "attempt N
    finished after X reported Y" row, the digest item's "sent in digest": never a first). The
    others (retrying, deferred, queued again, ...) are inserted counted: the fold never reads
    them, and the "first" probes look at every earlier row, counted or not."""
    return creation or (not record_only and status in COUNTING_STATUSES)


# (id, status, hour (whole hours since the epoch, UTC), channel, variant, provider,
#  accept->sent ms if in ACCEPTED, sent->delivered ms if delivered after its sent_at,
#  reason, client id, template id, first event?, first of its status?, first in ACCEPTED?)
EventTuple = tuple[Any, ...]
# (id, provider, hour, cost_micros, channel, variant, client id, template id)
AttemptTuple = tuple[Any, ...]

_SENT = ", ".join(f"'{s.value}'" for s in ACCEPTED)  # our own constants, not input


def _ms_sql(later: str, earlier: str) -> str:
    """Milliseconds from `earlier` to `later`, rounded half up, 0 if negative (clock skew):
    `ms_between`'s in SQL (exact: EXTRACT gives a numeric)."""
    return f"GREATEST(0, FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) * 1000 + 0.5))::bigint"


def _hour_sql(at: str) -> str:
    return f"FLOOR(EXTRACT(EPOCH FROM {at}) / 3600)::bigint"


# Times come back as whole numbers (hours since the epoch, milliseconds): parsing 2-3
# timestamps a row was a third of a fold's Python. One probe of the delivery's earlier rows
# (a lower id: a delivery's events are written under its row lock, so ids follow its order)
# answers the three "first" questions. It reads all of them (an aggregate cannot stop at the
# first match as NOT EXISTS did): a timeline is a handful of rows, since provider reports only
# move a delivery forward and attempts are bounded; three EXISTS would suit long ones.
EVENTS_SQL = f"""
WITH picked AS MATERIALIZED (
    SELECT id FROM deliveries_deliveryevent WHERE NOT counted
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE deliveries_deliveryevent SET counted = true FROM picked
    WHERE deliveries_deliveryevent.id = picked.id
    RETURNING deliveries_deliveryevent.id, deliveries_deliveryevent.delivery_id,
        deliveries_deliveryevent.status, deliveries_deliveryevent.at
)
SELECT t.id, t.status, {_hour_sql("t.at")}, d.channel, d.variant, d.provider,
    CASE WHEN t.status IN ({_SENT}) THEN {_ms_sql("t.at", "d.created_at")} END,
    CASE WHEN t.status = %s AND d.sent_at <= t.at THEN {_ms_sql("t.at", "d.sent_at")} END,
    d.reason, n.client_id, n.template_id,
    p.earlier = 0, NOT COALESCE(p.same, false), NOT COALESCE(p.sent, false)
FROM taken t
JOIN deliveries_delivery d ON d.id = t.delivery_id
JOIN deliveries_notification n ON n.id = d.notification_id
CROSS JOIN LATERAL (
    SELECT count(*) AS earlier, bool_or(e.status = t.status) AS same,
        bool_or(e.status IN ({_SENT})) AS sent
    FROM deliveries_deliveryevent e WHERE e.delivery_id = t.delivery_id AND e.id < t.id
) p
ORDER BY t.id
"""  # noqa: S608 - table names and statuses are ours; the limit is a parameter
ATTEMPTS_SQL = f"""
WITH picked AS MATERIALIZED (
    SELECT id FROM deliveries_attempt WHERE NOT counted
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE deliveries_attempt SET counted = true FROM picked
    WHERE deliveries_attempt.id = picked.id
    RETURNING deliveries_attempt.id, deliveries_attempt.delivery_id, deliveries_attempt.provider,
        deliveries_attempt.finished_at, deliveries_attempt.cost_micros
)
SELECT t.id, t.provider, {_hour_sql("t.finished_at")}, t.cost_micros, d.channel, d.variant,
    n.client_id, n.template_id
FROM taken t
JOIN deliveries_delivery d ON d.id = t.delivery_id
JOIN deliveries_notification n ON n.id = d.notification_id
ORDER BY t.id
"""  # noqa: S608 - table names are ours; the limit is a parameter


def epoch_hour(at: dt.datetime) -> int:
    """Whole hours from the epoch to `at` (its UTC hour), as the SQL above gives them."""
    return int(at.timestamp() // 3600)


def ms_between(later: dt.datetime, earlier: dt.datetime) -> int:
    """Milliseconds from `earlier` to `later`, rounded half up; 0 if negative (clock skew
    between writers)."""
    micros = (later - earlier) // dt.timedelta(microseconds=1)
    return max(0, (micros + 500) // 1000)


def events_take(*, limit: int) -> list[EventTuple]:
    """Up to `limit` uncounted timeline rows, oldest first, now marked counted (in the
    caller's transaction). The "first"s come from the delivery's earlier rows (a lower id: a
    delivery's events are written under its row lock, so ids follow its order), read on the
    delivery_id index (one aggregate on PostgreSQL, NOT EXISTS subqueries on SQLite); whether
    those were counted does not matter."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(EVENTS_SQL, [limit, DeliveryStatus.DELIVERED.value])
            return list(cursor.fetchall())
    earlier = DeliveryEvent.objects.filter(
        delivery_id=OuterRef("delivery_id"), id__lt=OuterRef("id")
    )
    read = list(
        DeliveryEvent.objects.filter(counted=False)
        .order_by("id")
        .annotate(
            created=Case(When(status__in=ACCEPTED, then=F("delivery__created_at"))),
            delivered_after=Case(
                When(status=DeliveryStatus.DELIVERED, then=F("delivery__sent_at"))
            ),
            first_event=~Exists(earlier),
            first_status=~Exists(earlier.filter(status=OuterRef("status"))),
            first_sent=~Exists(earlier.filter(status__in=ACCEPTED)),
        )
        .values_list(
            "id",
            "status",
            "at",
            "delivery__channel",
            "delivery__variant",
            "delivery__provider",
            "created",
            "delivered_after",
            "delivery__reason",
            "delivery__notification__client_id",
            "delivery__notification__template_id",
            "first_event",
            "first_status",
            "first_sent",
        )[:limit]
    )
    DeliveryEvent.objects.filter(id__in=[row[0] for row in read]).update(counted=True)
    rows = []
    for pk, status, at, channel, variant, provider, created, sent_at, *rest in read:
        accept_ms = ms_between(at, created) if created is not None else None
        deliver_ms = ms_between(at, sent_at) if sent_at is not None and sent_at <= at else None
        rows.append(
            (pk, status, epoch_hour(at), channel, variant, provider, accept_ms, deliver_ms, *rest)
        )
    return rows


def attempts_take(*, limit: int) -> list[AttemptTuple]:
    """Up to `limit` uncounted attempt rows, oldest first, now marked counted, as
    `events_take`'s."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(ATTEMPTS_SQL, [limit])
            return list(cursor.fetchall())
    read = list(
        Attempt.objects.filter(counted=False)
        .order_by("id")
        .values_list(
            "id",
            "provider",
            "finished_at",
            "cost_micros",
            "delivery__channel",
            "delivery__variant",
            "delivery__notification__client_id",
            "delivery__notification__template_id",
        )[:limit]
    )
    Attempt.objects.filter(id__in=[row[0] for row in read]).update(counted=True)
    return [(pk, provider, epoch_hour(finished), *rest) for pk, provider, finished, *rest in read]
