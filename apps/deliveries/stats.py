"""Reads for the operator dashboard: the last day of deliveries, hour by hour."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from apps.deliveries.models import DeadLetter, Delivery, DeliveryEvent, DeliveryStatus
from notifier.types import Channel

OUTCOMES = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.DEAD)


@dataclass
class HourlyStats:
    hours: list[dt.datetime]
    # channel -> outcome -> one count per hour
    outcomes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # accept->sent seconds per hour (None: nothing sent that hour)
    p50: list[float | None] = field(default_factory=list)
    p95: list[float | None] = field(default_factory=list)


def _hours(now: dt.datetime, count: int) -> list[dt.datetime]:
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - dt.timedelta(hours=count - 1 - i) for i in range(count)]


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _latency_percentiles(since: dt.datetime) -> dict[dt.datetime, tuple[float, float]]:
    sent = Delivery.objects.filter(sent_at__gte=since, sent_at__isnull=False)
    if connection.vendor == "postgresql":
        table = Delivery._meta.db_table
        secs = "EXTRACT(EPOCH FROM sent_at - created_at)"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT date_trunc('hour', sent_at), "  # noqa: S608 - no user input
                f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {secs}), "
                f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {secs}) "
                f"FROM {table} WHERE sent_at >= %s GROUP BY 1",
                [since],
            )
            return {hour: (float(p50), float(p95)) for hour, p50, p95 in cursor.fetchall()}
    by_hour: dict[dt.datetime, list[float]] = defaultdict(list)
    for sent_at, created_at in sent.values_list("sent_at", "created_at").iterator():
        if sent_at is None:  # pragma: no cover - filtered above
            continue
        hour = sent_at.replace(minute=0, second=0, microsecond=0)
        by_hour[hour].append((sent_at - created_at).total_seconds())
    return {h: (_percentile(v, 0.5), _percentile(v, 0.95)) for h, v in by_hour.items()}


def deliveries_hourly(*, hours: int = 24, now: dt.datetime | None = None) -> HourlyStats:
    """Per channel, sent / failed / dead events per hour, and accept->sent p50 / p95 per hour,
    over the last `hours` hours (the current hour included)."""
    now = now or timezone.now()
    slots = _hours(now, hours)
    since = slots[0]
    index = {h: i for i, h in enumerate(slots)}
    stats = HourlyStats(hours=slots)
    for channel in Channel:
        stats.outcomes[channel.value] = {o.value: [0] * hours for o in OUTCOMES}
    rows = (
        DeliveryEvent.objects.filter(at__gte=since, status__in=OUTCOMES)
        .annotate(hour=TruncHour("at"))
        .values("hour", "delivery__channel", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        i = index.get(row["hour"])
        counts = stats.outcomes.get(row["delivery__channel"])
        if i is not None and counts is not None:
            counts[row["status"]][i] += row["n"]
    latencies = _latency_percentiles(since)
    stats.p50 = [latencies[h][0] if h in latencies else None for h in slots]
    stats.p95 = [latencies[h][1] if h in latencies else None for h in slots]
    return stats


def dead_letters_by_reason(*, limit: int = 20) -> list[dict[str, object]]:
    """Dead letters not yet replayed, grouped by channel and reason, largest groups first."""
    return list(
        DeadLetter.objects.filter(replayed_at__isnull=True)
        .values("channel", "reason")
        .annotate(count=Count("id"))
        .order_by("-count", "channel", "reason")[:limit]
    )
