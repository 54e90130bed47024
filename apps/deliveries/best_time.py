"""`"send_at": "best_time"`: each recipient's deliveries go out at their most engaged local hour
within the next 24 hours (notifier/send_time.py), from their own opens, clicks and reads of the
last 90 days, or at once with too little history.

1. `engagement_by_hour`: the request's recipients' engagement events counted by hour of their
   local day, from ONE grouped statement (portable ORM: PostgreSQL, and SQLite under `make
   run`): counts by recipient and UTC quarter-hour, each turned into the recipient's local hour
   here with zoneinfo (no database time-zone names: PostgreSQL reads CET, EET, WET and MET as
   fixed offsets, and an unknown name is an error there).
2. `send_times_plan`: per recipient, when to send (their most engaged hour outside their quiet
   hours) and what the creation event says; with a holdout (`best_time_holdout`, a
   percentage), a sticky share of recipients is sent at once instead
   (notifier.experiments.assign on the recipient's external id, test key `best_time:<template
   key>`), each delivery's `variant` saying which arm (`best_time` or `immediate`), so the
   analytics can compare them. A stored timezone zoneinfo cannot load is read as UTC, and the
   note says so.
3. `send_times_apply`: the built deliveries scheduled at their recipient's time (the lifecycle's
   `delivery_best_time`), their variant set, and the notes for their first events.
4. `send_time_holdouts`: for the analytics' send-time test, the holdouts of the requests whose
   arms' deliveries were sent in a range (apps/analytics/experiments.py).

Quiet hours and the daily cap are applied again at send, as for any scheduled delivery.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Value, When
from django.db.models.functions import ExtractMinute, TruncHour

from apps.clients.models import ApiClient
from apps.deliveries.lifecycle import delivery_best_time
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus
from apps.recipients.models import Preference, Recipient
from notifier.experiments import assign
from notifier.routing import quiet_hours
from notifier.send_time import best_time

BEST_TIME = "best_time"
IMMEDIATE = "immediate"
# A send-time test's arms, as Delivery.variant (a copy test may not use them as labels:
# apps/templates/validation.py RESERVED_LABELS).
SEND_TIME_ARMS = frozenset({BEST_TIME, IMMEDIATE})
HISTORY = dt.timedelta(days=90)
# An engagement counts when its delivery was sent at most this long before the history's start
# (the read walks the recipient's deliveries by send time: index delivery_recipient_sent).
ENGAGEMENT_LAG = dt.timedelta(days=30)
ENGAGED = (DeliveryStatus.OPENED, DeliveryStatus.CLICKED, DeliveryStatus.READ)
UTC = "UTC"


def send_time_test_key(template_key: str) -> str:
    """The key a holdout's assignment hashes with the recipient's: one test per template."""
    return f"{BEST_TIME}:{template_key}"


def send_time_holdouts(
    *,
    client: ApiClient,
    template_id: int,
    sent_from: dt.datetime,
    sent_to: dt.datetime,
    channel: str | None = None,
) -> dict[str, list[int]]:
    """{channel: the distinct `best_time_holdout`s, ascending} of the template's notifications
    (`client`'s; an ops key's: every client's) with a delivery in an arm sent in [sent_from,
    sent_to), in ONE grouped query: the notifications by template (its foreign-key index),
    their deliveries by notification. Only deliveries still on record count (RETENTION_DAYS)."""
    rows = Delivery.objects.filter(
        notification__template_id=template_id,
        notification__best_time_holdout__isnull=False,
        notification__created_at__lt=sent_to,  # sent after it was accepted
        variant__in=SEND_TIME_ARMS,
        sent_at__gte=sent_from,
        sent_at__lt=sent_to,
    )
    if not client.is_ops:
        rows = rows.filter(notification__client=client)
    if channel is not None:
        rows = rows.filter(channel=channel)
    holdouts: dict[str, list[int]] = {}
    pairs = rows.values_list("channel", "notification__best_time_holdout").distinct()
    for test_channel, holdout in pairs.order_by("channel", "notification__best_time_holdout"):
        if holdout is not None:  # filtered out above: for the type checker
            holdouts.setdefault(test_channel, []).append(holdout)
    return holdouts


def recipient_zone(recipient: Recipient) -> tuple[ZoneInfo, bool]:
    """The recipient's zone, and whether it is the one stored: a value zoneinfo cannot load (an
    unknown or malformed name written past the API's checks) is read as UTC."""
    try:
        return ZoneInfo(recipient.timezone or UTC), True
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        return ZoneInfo(UTC), False


# Every zone's offset today is a whole number of quarter-hours: the UTC quarter-hour of an event
# tells its local hour anywhere.
_QUARTER = Case(
    When(minute__gte=45, then=Value(3)),
    When(minute__gte=30, then=Value(2)),
    When(minute__gte=15, then=Value(1)),
    default=Value(0),
    output_field=IntegerField(),
)


def engagement_by_hour(
    *, recipients: Sequence[Recipient], now: dt.datetime
) -> dict[int, dict[int, int]]:
    """By recipient id: their opened/clicked/read events since `now` - 90 days, counted by hour
    (0-23) of their local day (`recipient_zone`). One statement for all of them; recipients
    without any are absent."""
    if not recipients:
        return {}
    since = now - HISTORY
    rows = (
        DeliveryEvent.objects.filter(
            status__in=ENGAGED,
            at__gte=since,
            delivery__recipient_id__in=[r.pk for r in recipients],
            delivery__sent_at__gte=since - ENGAGEMENT_LAG,
        )
        .annotate(
            minute=ExtractMinute("at", tzinfo=dt.UTC),
            hour=TruncHour("at", tzinfo=dt.UTC),
            quarter=_QUARTER,
        )
        .values_list("delivery__recipient_id", "hour", "quarter")
        .annotate(n=Count("*"))
        .order_by()
    )
    zones = {r.pk: recipient_zone(r)[0] for r in recipients}
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for recipient_id, hour, quarter, n in rows:
        at = hour + dt.timedelta(minutes=15 * quarter)
        counts[recipient_id][at.astimezone(zones[recipient_id]).hour] += n
    return {pk: dict(hours) for pk, hours in counts.items()}


@dataclass(frozen=True)
class SendTime:
    at: dt.datetime | None  # None: at once
    note: str  # what the creation event says first
    variant: str  # BEST_TIME or IMMEDIATE with a holdout, else ""


def _engagements(count: int) -> str:
    return f"{count} engagement{'' if count == 1 else 's'}"


def _quiet(recipient: Recipient) -> frozenset[int]:
    """The local hours inside the recipient's quiet window (their preferences come with the
    request's recipients: no query)."""
    try:
        preference = recipient.preference
    except Preference.DoesNotExist:
        return frozenset()
    return quiet_hours(preference.quiet_start, preference.quiet_end)


def send_times_plan(
    *,
    recipients: Sequence[Recipient],
    template_key: str,
    holdout: int | None,
    now: dt.datetime,
) -> dict[int, SendTime]:
    """When each recipient (by id) is sent, and why: the start of their most engaged local hour
    outside their quiet hours (notifier.send_time.best_time), or at once."""
    minimum = int(settings.ANALYTICS_BEST_TIME_MIN_EVENTS)
    history = engagement_by_hour(recipients=recipients, now=now)
    weights = None if holdout is None else [(IMMEDIATE, holdout), (BEST_TIME, 100 - holdout)]
    plan: dict[int, SendTime] = {}
    for recipient in recipients:
        variant = (
            ""
            if weights is None
            else assign(send_time_test_key(template_key), recipient.external_id, weights)
        )
        if variant == IMMEDIATE:
            plan[recipient.pk] = SendTime(
                None, "best time: held out (A/B test), sending now", variant
            )
            continue
        counts = history.get(recipient.pk, {})
        total = sum(counts.values())
        zone, stored = recipient_zone(recipient)
        at = best_time(
            counts, now=now, timezone=zone.key, minimum=minimum, excluded=_quiet(recipient)
        )
        if at is None:
            note = f"best time: too little history ({_engagements(total)}), sending now"
        else:
            # The hour's start (`at` is now when the hour is under way; a zone may be :30 off)
            local = at.astimezone(zone).replace(minute=0, second=0, microsecond=0)
            why = f"{_engagements(total)} in 90 days"
            if not stored:
                why += f"; unknown timezone {recipient.timezone!r}, UTC used"
            note = f"best time: {local:%H:%M} {zone.key} ({why})"
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
        if delivery.status != DeliveryStatus.SKIPPED:  # never sent: in no arm
            delivery.variant = chosen.variant
        notes[delivery.id] = chosen.note
    return notes
