"""Operator actions behind the management commands."""

from __future__ import annotations

import time
from dataclasses import dataclass

from apps.core.errors import InvalidInput, NotFound
from apps.deliveries.models import ACCEPTED, CANCELLABLE, Delivery, DeliveryStatus
from apps.deliveries.services import NotificationRequest, notification_create
from apps.recipients.models import Recipient
from apps.templates.models import Template
from apps.templates.services import template_save

TEST_TEMPLATE_KEY = "ops-test-notification"
TEST_VARIANTS = [
    {
        "channel": "email",
        "subject": "Test notification",
        "body": "Hello {{ recipient.name }}, this is a test notification from Notifier.",
    },
    {"channel": "sms", "body": "Test notification from Notifier."},
    {"channel": "push", "title": "Test notification", "body": "Sent by an operator."},
    {"channel": "inapp", "title": "Test notification", "body": "Sent by an operator."},
]
# Still moving through the pipeline: keep waiting.
IN_FLIGHT = {*CANCELLABLE, DeliveryStatus.SENDING}


@dataclass(frozen=True)
class ProbeResult:
    notification_id: str
    delivery_id: str
    status: str
    reason: str


def notification_probe_send(
    *, recipient: str, channel: str, client_name: str | None = None, wait_seconds: float = 0.0
) -> ProbeResult:
    """Send the built-in test template to one recipient on one channel, through the pipeline."""
    candidates = Recipient.objects.filter(external_id=recipient, erased_at__isnull=True)
    if client_name:
        candidates = candidates.filter(client__name=client_name)
    found = list(candidates.select_related("client")[:2])
    if not found:
        raise NotFound(
            f"No recipient {recipient!r}"
            + (f" for client {client_name!r}." if client_name else ".")
        )
    if len(found) > 1:
        raise InvalidInput(f"Recipient {recipient!r} exists for several clients: pass --client.")
    client = found[0].client
    if not Template.objects.filter(client=client, key=TEST_TEMPLATE_KEY).exists():
        template_save(
            client=client, key=TEST_TEMPLATE_KEY, variants=TEST_VARIANTS, category="operations"
        )
    body, _ = notification_create(
        client=client,
        request=NotificationRequest(
            recipients=[recipient], template=TEST_TEMPLATE_KEY, channels=[channel]
        ),
    )
    (summary,) = body["deliveries"]
    status, reason = summary["status"], summary["reason"]
    deadline = time.monotonic() + wait_seconds
    while status in IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.2)
        status, reason = Delivery.objects.values_list("status", "reason").get(id=summary["id"])
    if status in ACCEPTED:
        reason = ""
    return ProbeResult(
        notification_id=body["id"], delivery_id=summary["id"], status=status, reason=reason
    )
