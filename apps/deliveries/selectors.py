"""Reads for notifications and deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, OuterRef, QuerySet

from apps.clients.models import ApiClient
from apps.deliveries.models import DeadLetter, Delivery, DeliveryStatus, FanOut, Notification


def notifications_visible_to(*, client: ApiClient) -> QuerySet[Notification]:
    """What a key may see: its own notifications, or every client's for ops keys."""
    qs = Notification.objects.all()
    return qs if client.is_ops else qs.filter(client=client)


# A topic's notification (up to 100,000 deliveries) lists at most this many on its page; the
# rest are read through GET /notifications/{id}/deliveries, a page at a time. A notification to
# listed recipients (at most 1000, times their channels) lists every one, as API.md promises.
DETAIL_DELIVERIES_MAX = 100


def _delivery_rows() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("recipient", "digest").prefetch_related(
        "events", "attempt_rows"
    )


def notification_detail(*, client: ApiClient, notification_id: str) -> Notification | None:
    """The notification with its deliveries (`shown_deliveries`): every one, or for a topic's
    the first DETAIL_DELIVERIES_MAX with all of them counted by status (`delivery_counts`) and
    in all (`deliveries_total`)."""
    notification = (
        notifications_visible_to(client=client)
        .select_related("template", "template_version", "fan_out")
        .filter(id=notification_id)
        .first()
    )
    if notification is None:
        return None
    rows = (
        _delivery_rows().filter(notification=notification).order_by("created_at", "channel", "id")
    )
    if not _fanned_out(notification):
        notification.shown_deliveries = list(rows)  # type: ignore[attr-defined]
        notification.deliveries_truncated = False  # type: ignore[attr-defined]
        return notification
    counts = notifications_status_counts(notification_ids=[str(notification.id)])
    notification.delivery_counts = counts.get(str(notification.id), {})  # type: ignore[attr-defined]
    notification.deliveries_total = sum(notification.delivery_counts.values())  # type: ignore[attr-defined]
    notification.shown_deliveries = list(rows[:DETAIL_DELIVERIES_MAX])  # type: ignore[attr-defined]
    notification.deliveries_truncated = (  # type: ignore[attr-defined]
        notification.deliveries_total > len(notification.shown_deliveries)  # type: ignore[attr-defined]
    )
    return notification


def _fanned_out(notification: Notification) -> bool:
    """A topic's notification (its deliveries made by a fan-out)."""
    try:
        return notification.fan_out is not None
    except FanOut.DoesNotExist:
        return False


def notification_deliveries(
    *, client: ApiClient, notification_id: str
) -> QuerySet[Delivery] | None:
    """Every delivery of a notification the key may see (None if it may not), to paginate."""
    if not notifications_visible_to(client=client).filter(id=notification_id).exists():
        return None
    return _delivery_rows().filter(notification_id=notification_id)


def notifications_list(
    *,
    client: ApiClient,
    recipient: str | None = None,
    status: str | None = None,
    channel: str | None = None,
) -> QuerySet[Notification]:
    """Notifications with at least one delivery matching every given filter (all together)."""
    qs = notifications_visible_to(client=client).select_related("template", "template_version")
    delivery_filter: dict[str, str] = {}
    if recipient is not None:
        delivery_filter["recipient__external_id"] = recipient
    if status is not None:
        delivery_filter["status"] = status
    if channel is not None:
        delivery_filter["channel"] = channel
    if delivery_filter:
        matching = Delivery.objects.filter(notification=OuterRef("pk"), **delivery_filter)
        qs = qs.filter(Exists(matching))
    return qs


def notifications_status_counts(*, notification_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """{notification id: {delivery status: count}} in one query."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        Delivery.objects.filter(notification_id__in=list(notification_ids))
        .values("notification_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts.setdefault(str(row["notification_id"]), {})[row["status"]] = row["n"]
    return counts


def recipient_sent_today(*, recipient_id: int, timezone: str, now: dt.datetime) -> int:
    """Deliveries the providers accepted for this recipient since midnight in their timezone
    (the daily cap's count; index delivery_recipient_sent)."""
    tz = ZoneInfo(timezone)
    midnight = dt.datetime.combine(now.astimezone(tz).date(), dt.time(), tzinfo=tz)
    return Delivery.objects.filter(recipient_id=recipient_id, sent_at__gte=midnight).count()


def dead_letters_list(
    *, channel: str | None = None, reason: str | None = None, replayed: bool | None = None
) -> QuerySet[DeadLetter]:
    """Dead letters for operators, newest first; `reason` matches a part, case-insensitively."""
    qs = DeadLetter.objects.select_related("delivery__recipient", "delivery__notification")
    if channel:
        qs = qs.filter(channel=channel)
    if reason:
        qs = qs.filter(reason__icontains=reason)
    if replayed is not None:
        qs = qs.filter(replayed_at__isnull=not replayed)
    return qs.order_by("-created_at", "-id")


def notification_skipped_deliveries(*, notification: Notification) -> list[dict[str, Any]]:
    """What the notification's bodies list for its unknown recipient ids (`skipped`): one
    delivery summary per requested channel, `skipped` with the reason and no id. They are not
    rows, so no delivery query or filter ever finds them."""
    return [
        {
            "id": None,
            "recipient": entry["recipient"],
            "channel": channel,
            "status": DeliveryStatus.SKIPPED.value,
            "reason": entry["reason"],
        }
        for entry in notification.skipped
        for channel in notification.channels
    ]
