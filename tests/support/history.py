"""A day of delivery history with known numbers, for the dashboard tests and screenshot."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from apps.clients.models import ApiClient
from apps.deliveries.models import (
    DeadLetter,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Notification,
)
from apps.recipients.models import Recipient
from tests.factories import (
    DeliveryFactory,
    NotificationFactory,
    RecipientFactory,
    TemplateFactory,
)

# channel -> (sent, failed, dead) per hour, by hours ago (0 = the current hour)
PATTERN = {
    "email": lambda h: (4 + (h * 7) % 5, 1 if h % 5 == 0 else 0, 1 if h % 8 == 3 else 0),
    "sms": lambda h: (2 + (h * 3) % 4, 0, 2 if h == 2 else 0),
    "push": lambda h: (3 + (h * 5) % 4, 1 if h % 6 == 1 else 0, 0),
    "inapp": lambda h: (3 + h % 3, 0, 0),
}
REASONS = {"email": "sendgrid 503", "sms": "twilio 21211 invalid number", "push": "unregistered"}


@dataclass
class History:
    now: dt.datetime
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)


def seed_history(*, client: ApiClient, now: dt.datetime, hours: int = 24) -> History:
    """Deliveries whose final event falls in each of the last `hours` hours, per PATTERN; the
    i-th (from 1) sent one of an hour took i x (hours ago + 1) / 10 seconds from accept."""
    history = History(now=now)
    template = TemplateFactory(client=client)
    recipients = [RecipientFactory(client=client) for _ in range(10)]
    top = now.replace(minute=0, second=0, microsecond=0)
    for channel, pattern in PATTERN.items():
        counts = history.totals.setdefault(channel, {"sent": 0, "failed": 0, "dead": 0})
        for ago in range(hours):
            at = top - dt.timedelta(hours=ago) + dt.timedelta(minutes=1)
            if at > now:
                at = now
            notification = NotificationFactory(client=client, template=template)
            people = iter(recipients)
            for status, n in zip(("sent", "failed", "dead"), pattern(ago), strict=True):
                for i in range(n):
                    latency = (i + 1) * (ago + 1) / 10
                    _delivery(notification, next(people), channel, status, at, latency=latency)
                counts[status] += n
                if status == "dead" and n:
                    key = (channel, REASONS[channel])
                    history.dead_letters[key] = history.dead_letters.get(key, 0) + n
    return history


def _delivery(
    notification: Notification,
    recipient: Recipient,
    channel: str,
    status: str,
    at: dt.datetime,
    *,
    latency: float,
) -> Delivery:
    delivery = DeliveryFactory(
        notification=notification,
        recipient=recipient,
        channel=channel,
        status=status,
    )
    sent_at = at if status == "sent" else None
    Delivery.objects.filter(id=delivery.id).update(
        created_at=at - dt.timedelta(seconds=latency), sent_at=sent_at, updated_at=at
    )
    event = DeliveryEvent.objects.create(delivery=delivery, status=status, detail="seeded")
    DeliveryEvent.objects.filter(id=event.id).update(at=at)
    if status == DeliveryStatus.DEAD:
        DeadLetter.objects.create(
            delivery=delivery, channel=channel, reason=REASONS[channel], attempts=6
        )
    return delivery
