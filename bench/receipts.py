"""What a chaos run's accounting reads: the deliveries (of the run's notifications, or the
digests' own), the digest windows, and the receipts that say a delivery reached its provider
(bench/accounting.py decides what each one counts as)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ACCEPTED = {"sent", "delivered", "opened", "clicked", "read"}


@dataclass(frozen=True)
class Row:
    id: str
    notification_id: str
    recipient_id: int
    channel: str
    status: str
    provider: str = ""
    digest_id: str | None = None
    is_fallback: bool = False


@dataclass(frozen=True)
class Window:
    id: str
    closed: bool
    outcome: str
    delivery_id: str | None
    item_count: int = 0  # the items it closed with
    digested: int = 0  # its items `digested` in the database now


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- reading the database -----------------------------------------------------------------


def delivery_rows(notification_ids: Iterable[str] = (), ids: Iterable[str] = ()) -> list[Row]:
    """The deliveries of these notifications, or with these ids."""
    from apps.deliveries.models import Delivery

    columns = (
        "id",
        "notification_id",
        "recipient_id",
        "channel",
        "status",
        "provider",
        "digest_id",
        "is_fallback",
    )
    found: list[Row] = []
    for field_name, values in (("notification_id__in", notification_ids), ("id__in", ids)):
        for chunk in chunks(list(values), 5000):
            for i, n, r, c, s, p, d, f in Delivery.objects.filter(
                **{field_name: chunk}
            ).values_list(*columns):
                found.append(Row(str(i), str(n), r, c, s, p, str(d) if d else None, f))
    return found


def digest_windows(digest_ids: Iterable[str]) -> dict[str, Window]:
    from django.db.models import Count, Q

    from apps.deliveries.models import Digest

    found: dict[str, Window] = {}
    for chunk in chunks(sorted(set(digest_ids)), 5000):
        for i, closed_at, outcome, delivery_id, item_count, digested in (
            Digest.objects.filter(id__in=chunk)
            .annotate(digested=Count("items", filter=Q(items__status="digested")))
            .values_list("id", "closed_at", "outcome", "delivery_id", "item_count", "digested")
        ):
            found[str(i)] = Window(
                str(i),
                closed_at is not None,
                outcome,
                str(delivery_id) if delivery_id else None,
                item_count,
                digested,
            )
    return found


# A digest's own delivery begins its timeline "digest <window id> of <n>: ..."
# (apps/deliveries/lifecycle/digests.py, digest_deliver).
_DIGEST_FIRST_EVENT = re.compile(r"^digest ([0-9a-f-]{36}) of [0-9]+: ")


def digest_deliveries(window_ids: Collection[str]) -> dict[str, set[str]]:
    """Window id -> every delivery made for it as its digest (by their first event): more than
    its `Digest.delivery` means it closed (and sent) twice."""
    from apps.deliveries.models import DeliveryEvent

    found: dict[str, set[str]] = {}
    events = DeliveryEvent.objects.filter(detail__regex=_DIGEST_FIRST_EVENT.pattern)
    for detail, delivery_id in events.values_list("detail", "delivery_id").iterator():
        match = _DIGEST_FIRST_EVENT.match(detail)
        if match and match[1] in window_ids:
            found.setdefault(match[1], set()).add(str(delivery_id))
    return found


def _inbox_delivery_ids(delivery_ids: list[str]) -> set[str] | None:
    """Deliveries stored in an inbox, when the in-app channel stores them (None if not)."""
    from apps.inbox.models import InboxMessage

    if not any(f.name == "delivery" for f in InboxMessage._meta.get_fields()):
        return None
    found: set[str] = set()
    for chunk in chunks(delivery_ids, 5000):
        found |= {
            str(d)
            for d in InboxMessage.objects.filter(delivery_id__in=chunk).values_list(
                "delivery_id", flat=True
            )
        }
    return found


def _dead_reasons(delivery_ids: list[str]) -> dict[str, str]:
    from apps.deliveries.models import DeadLetter

    found: dict[str, str] = {}
    for chunk in chunks(delivery_ids, 5000):
        for delivery_id, reason in DeadLetter.objects.filter(delivery_id__in=chunk).values_list(
            "delivery_id", "reason"
        ):
            found[str(delivery_id)] = reason
    return found


# --- evidence -----------------------------------------------------------------------------


@dataclass
class Receipts:
    """What says a delivery reached its provider: the simulators' records by delivery id, the
    inbox rows (in-app, when its provider stores them), else the delivery's status."""

    by_sim: dict[str, Counter[str]]
    inbox: set[str] | None
    dead: dict[str, str]

    @classmethod
    def read(cls, rows: list[Row], sim_records: Mapping[str, list[dict[str, Any]]]) -> Receipts:
        by_sim: dict[str, Counter[str]] = {}
        for channel, records in sim_records.items():
            keyed = [r for r in records if r.get("key")]
            if records and not keyed:
                continue  # this simulator does not echo the delivery id: fall back to the DB
            by_sim[channel] = Counter(r["key"] for r in keyed if 200 <= int(r["status"]) < 300)
        console = {r.channel for r in rows if r.provider.startswith("console")}
        inbox = (
            None
            if "inapp" in console
            else _inbox_delivery_ids([r.id for r in rows if r.channel == "inapp"])
        )
        dead = _dead_reasons([r.id for r in rows if r.status in {"dead", "failed"}])
        return cls(by_sim, inbox, dead)

    def received(self, row: Row) -> int:
        if row.channel in self.by_sim:
            return self.by_sim[row.channel].get(row.id, 0)
        if row.channel == "inapp" and self.inbox is not None:
            return 1 if row.id in self.inbox else 0
        return 1 if row.status in ACCEPTED else 0

    def evidence(self, channel: str) -> str:
        if channel in self.by_sim:
            return "simulator records (delivery id)"
        if channel == "inapp" and self.inbox is not None:
            return "inbox rows"
        return "delivery status only (console provider: no simulator)"

    def outcome(self, row: Row) -> tuple[str, int]:
        """("delivered", times received) | ("dead", 0) | ("skipped", 0) | ("lost", 0)."""
        received = self.received(row)
        if received:
            return "delivered", received
        if row.status in {"dead", "failed"} and row.id in self.dead:
            return "dead", 0
        if row.status == "skipped":
            return "skipped", 0
        return "lost", 0
