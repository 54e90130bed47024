"""The events' bodies: `{"id", "type", "created_at", "data"}`. Ids and statuses only, unless the
endpoint opts in (`include_content`): then also the contact address unmasked and the
notification's variables (bodies are rendered at send time and not kept)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from apps.deliveries.signals import DeliveryChange
from notifier.channels import spec
from notifier.masking import mask_address, mask_text

EVENT_ID_PREFIX = "msg_"


def event_id_new() -> str:
    """A new event's id: the `webhook-id` of every message of it, across retries and replays."""
    return f"{EVENT_ID_PREFIX}{uuid.uuid4().hex}"


def envelope(*, event_id: str, type_: str, at: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "type": type_, "created_at": at.isoformat(), "data": data}


@dataclass(frozen=True)
class RecipientFacts:
    external_id: str
    email: str
    phone: str


def delivery_data(
    change: DeliveryChange,
    recipient: RecipientFacts,
    *,
    include_content: bool,
    variables: dict[str, Any] | None,
) -> dict[str, Any]:
    """`data` of a `delivery.<status>` event."""
    field = spec(change.channel).address_field
    address = str(getattr(recipient, field, "")) if field else ""
    data: dict[str, Any] = {
        "delivery_id": str(change.delivery_id),
        "notification_id": str(change.notification_id),
        "recipient": recipient.external_id,
        "channel": change.channel,
        "status": change.status,
        "reason": change.reason if include_content else mask_text(change.reason),
        "provider": change.provider,
        "attempts": change.attempts,
        "contact": address if include_content else (mask_address(address) if address else ""),
    }
    if include_content:
        data["variables"] = variables or {}
    return data


def cancelled_data(*, notification_id: Any, cancelled: list[Any]) -> dict[str, Any]:
    """`data` of `notification.cancelled`: the deliveries the cancel stopped."""
    return {
        "notification_id": str(notification_id),
        "cancelled_deliveries": [str(pk) for pk in cancelled],
    }


def recipient_data(*, external_id: str, category: str, channel: str, source: str) -> dict[str, Any]:
    """`data` of `recipient.unsubscribed` and `recipient.preferences_updated`."""
    return {"recipient": external_id, "category": category, "channel": channel, "source": source}


def ping_data(*, endpoint_id: Any) -> dict[str, Any]:
    return {"endpoint_id": str(endpoint_id), "message": "ping"}
