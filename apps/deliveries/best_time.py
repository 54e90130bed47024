"""`"send_at": "best_time"`: each recipient's deliveries go out at their most engaged local hour
within the next 24 hours (notifier/send_time.py), from their own opens, clicks and reads of the
last 90 days, or at once with too little history.

1. `engagement_by_hour`: the request's recipients' engagement events counted by hour of their
   local day, in ONE grouped statement (the partial index deliveryevent_engagement).
2. `send_times_plan`: per recipient, when to send and what the creation event says; with a
   holdout (`best_time_holdout`, a percentage), a sticky share of recipients is sent at once
   instead (notifier.experiments.assign, test key `best_time:<template key>`), each delivery's
   `variant` saying which arm (`best_time` or `immediate`), so the analytics can compare them.
3. `send_times_apply`: the built deliveries scheduled at their recipient's time (the lifecycle's
   `delivery_best_time`), their variant set, and the notes for their first events.

Quiet hours and the daily cap are applied again at send, as for any scheduled delivery.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from apps.deliveries.lifecycle import delivery_best_time
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus
from apps.recipients.models import Recipient
from notifier.experiments import assign
from notifier.send_time import best_time

BEST_TIME = "best_time"
IMMEDIATE = "immediate"
HISTORY = dt.timedelta(days=90)
ENGAGED = (DeliveryStatus.OPENED, DeliveryStatus.CLICKED, DeliveryStatus.READ)


def _zone(recipient: Recipient) -> str:
    return recipient.timezone or "UTC"


def engagement_by_hour(
    *, recipients: Sequence[Recipient], now: dt.datetime
) -> dict[int, dict[int, int]]:
    """By recipient id: their opened/clicked/read events since `now` - 90 days, counted by hour
    (0-23) of their local day. One statement for all of them; recipients without any are
    absent."""
    if not recipients:
        return {}
    events, deliveries = DeliveryEvent._meta.db_table, Delivery._meta.db_table
    # Table names are the models'; every value is a parameter.
    sql = f"""SELECT r.id, EXTRACT(HOUR FROM e.at AT TIME ZONE r.zone)::int, COUNT(*)
        FROM unnest(%s::bigint[], %s::text[]) AS r(id, zone)
        JOIN {deliveries} d ON d.recipient_id = r.id
        JOIN {events} e ON e.delivery_id = d.id
        WHERE e.status IN ('opened', 'clicked', 'read') AND e.at >= %s
        GROUP BY 1, 2
    """  # noqa: S608
    params: list[Any] = [[r.pk for r in recipients], [_zone(r) for r in recipients], now - HISTORY]
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for recipient_id, hour, count in cursor.fetchall():
            counts[recipient_id][hour] = count
    return dict(counts)


@dataclass(frozen=True)
class SendTime:
    at: dt.datetime | None  # None: at once
    note: str  # what the creation event says first
    variant: str  # BEST_TIME or IMMEDIATE with a holdout, else ""


def _engagements(count: int) -> str:
    return f"{count} engagement{'' if count == 1 else 's'}"


def send_times_plan(
    *,
    recipients: Sequence[Recipient],
    template_key: str,
    holdout: int | None,
    now: dt.datetime,
) -> dict[int, SendTime]:
    """When each recipient (by id) is sent, and why."""
    minimum = int(settings.ANALYTICS_BEST_TIME_MIN_EVENTS)
    history = engagement_by_hour(recipients=recipients, now=now)
    weights = None if holdout is None else [(IMMEDIATE, holdout), (BEST_TIME, 100 - holdout)]
    plan: dict[int, SendTime] = {}
    for recipient in recipients:
        variant = (
            ""
            if weights is None
            else assign(f"best_time:{template_key}", str(recipient.pk), weights)
        )
        if variant == IMMEDIATE:
            plan[recipient.pk] = SendTime(
                None, "best time: held out (A/B test), sending now", variant
            )
            continue
        counts = history.get(recipient.pk, {})
        total, zone = sum(counts.values()), _zone(recipient)
        at = best_time(counts, now=now, timezone=zone, minimum=minimum)
        if at is None:
            note = f"best time: too little history ({_engagements(total)}), sending now"
        else:
            # The hour's start (`at` is now when the hour is under way; a zone may be :30 off)
            local = at.astimezone(ZoneInfo(zone)).replace(minute=0, second=0, microsecond=0)
            note = f"best time: {local:%H:%M} {zone} ({_engagements(total)} in 90 days)"
            if at <= now:  # the hour is under way
                note += ", sending now"
        plan[recipient.pk] = SendTime(at, note, variant)
    return plan


def send_times_apply(
    *, deliveries: Sequence[Delivery], plan: Mapping[int, SendTime], now: dt.datetime
) -> dict[uuid.UUID, str]:
    """Schedule the (unsaved) deliveries at their recipient's time and set their variant.
    Returns the notes for their first events, by delivery id."""
    notes: dict[uuid.UUID, str] = {}
    for delivery in deliveries:
        chosen = plan.get(delivery.recipient_id)
        if chosen is None:
            continue
        delivery_best_time(delivery, at=chosen.at, now=now)
        delivery.variant = chosen.variant
        notes[delivery.id] = chosen.note
    return notes
