"""Account for every delivery of a chaos run: delivered (per the simulators' records or the
inbox), dead-lettered with a reason, or lost. Duplicates: one delivery id received (and
accepted) twice by a simulator."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# `digested`: the item went out inside its digest's own delivery (a notification of its own,
# outside the run's ids); it is accounted, not lost.
FINAL = {
    "sent",
    "delivered",
    "opened",
    "clicked",
    "read",
    "dead",
    "failed",
    "skipped",
    "cancelled",
    "digested",
}
ACCEPTED = {"sent", "delivered", "opened", "clicked", "read"}


@dataclass
class Account:
    notifications: int = 0
    deliveries: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    duplicated: int = 0
    dead: int = 0
    skipped: int = 0
    digested: int = 0
    lost: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    lost_examples: list[str] = field(default_factory=list)
    by_channel: dict[str, Counter[str]] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    db_status: Counter[str] = field(default_factory=Counter)

    def channel(self, name: str) -> Counter[str]:
        return self.by_channel.setdefault(name, Counter())


def unfinished(notification_ids: list[str]) -> int:
    """Deliveries of these notifications not yet in a final state."""
    from apps.deliveries.models import Delivery

    total = 0
    for chunk in _chunks(notification_ids, 5000):
        total += (
            Delivery.objects.filter(notification_id__in=chunk).exclude(status__in=FINAL).count()
        )
    return total


def status_counts(notification_ids: list[str]) -> Counter[str]:
    from django.db.models import Count

    from apps.deliveries.models import Delivery

    counts: Counter[str] = Counter()
    for chunk in _chunks(notification_ids, 5000):
        rows = (
            Delivery.objects.filter(notification_id__in=chunk)
            .values_list("status")
            .annotate(n=Count("id"))
        )
        for status, n in rows:
            counts[status] += n
    return counts


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _inbox_delivery_ids(delivery_ids: list[str]) -> set[str] | None:
    """Deliveries stored in an inbox, when the in-app channel stores them (None if not)."""
    from apps.inbox.models import InboxMessage

    if not any(f.name == "delivery" for f in InboxMessage._meta.get_fields()):
        return None
    found: set[str] = set()
    for chunk in _chunks(delivery_ids, 5000):
        found |= {
            str(d)
            for d in InboxMessage.objects.filter(delivery_id__in=chunk).values_list(
                "delivery_id", flat=True
            )
        }
    return found


def account(
    notification_ids: list[str],
    expected_deliveries: int,
    sim_records: dict[str, list[dict[str, Any]]],
) -> Account:
    """`sim_records`: channel -> the simulator's request log (each with `key` and `status`)."""
    from apps.deliveries.models import DeadLetter, Delivery

    result = Account(notifications=len(notification_ids), expected_deliveries=expected_deliveries)
    rows: list[tuple[str, str, str]] = []
    console: set[str] = set()
    for chunk in _chunks(notification_ids, 5000):
        for i, c, s, provider in Delivery.objects.filter(notification_id__in=chunk).values_list(
            "id", "channel", "status", "provider"
        ):
            rows.append((str(i), c, s))
            if provider.startswith("console"):
                console.add(c)
    result.deliveries = len(rows)
    accepted_by_sim: dict[str, Counter[str]] = {}
    for channel, records in sim_records.items():
        keyed = [r for r in records if r.get("key")]
        if records and not keyed:
            continue  # this simulator does not echo the delivery id: fall back to the DB
        accepted_by_sim[channel] = Counter(r["key"] for r in keyed if 200 <= int(r["status"]) < 300)
    inbox = (
        None if "inapp" in console else _inbox_delivery_ids([d for d, c, _ in rows if c == "inapp"])
    )
    dead_ids: dict[str, str] = {}
    for chunk in _chunks([d for d, _, s in rows if s in {"dead", "failed"}], 5000):
        for delivery_id, reason in DeadLetter.objects.filter(delivery_id__in=chunk).values_list(
            "delivery_id", "reason"
        ):
            dead_ids[str(delivery_id)] = reason
    for channel in {c for _, c, _ in rows}:
        if channel in accepted_by_sim:
            result.evidence[channel] = "simulator records (delivery id)"
        elif channel == "inapp" and inbox is not None:
            result.evidence[channel] = "inbox rows"
        else:
            result.evidence[channel] = "delivery status only (console provider: no simulator)"
    for delivery_id, channel, status in rows:
        result.db_status[status] += 1
        counts = result.channel(channel)
        if channel in accepted_by_sim:
            received = accepted_by_sim[channel].get(delivery_id, 0)
        elif channel == "inapp" and inbox is not None:
            received = 1 if delivery_id in inbox else 0
        else:
            received = 1 if status in ACCEPTED else 0
        if received:
            result.delivered += 1
            counts["delivered"] += 1
            if received > 1:
                result.duplicated += received - 1
                counts["duplicated"] += received - 1
            if status not in ACCEPTED:
                counts[f"delivered but {status} in db"] += 1
        elif status in {"dead", "failed"} and delivery_id in dead_ids:
            result.dead += 1
            counts["dead"] += 1
            result.dead_reasons[dead_ids[delivery_id]] += 1
        elif status == "skipped":
            result.skipped += 1
            counts["skipped"] += 1
        elif status == "digested":
            result.digested += 1
            counts["digested"] += 1
        else:
            result.lost += 1
            counts["lost"] += 1
            if len(result.lost_examples) < 10:
                result.lost_examples.append(f"{delivery_id} ({channel}, {status} in db)")
    # Rows that should exist but do not are lost too.
    missing = max(0, expected_deliveries - result.deliveries)
    result.lost += missing
    if missing:
        result.lost_examples.append(f"{missing} deliveries accepted by the API but not in the db")
    return result
