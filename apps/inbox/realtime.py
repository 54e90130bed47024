"""The Channels side of the inbox: group names and the events sent to them.

Producers (the inapp worker, the REST mark-read endpoints) publish through the channel layer,
which is Redis: a message sent from any process reaches a socket on any ASGI server.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.inbox.models import InboxMessage

logger = logging.getLogger(__name__)

# Channels' handler names: "inbox.notification" is dispatched to `inbox_notification`.
NOTIFICATION_EVENT = "inbox.notification"
UNREAD_EVENT = "inbox.unread"


def inbox_group(recipient_id: int) -> str:
    return f"inbox.{recipient_id}"


def message_payload(message: InboxMessage) -> dict[str, Any]:
    """What a client receives for one message (WebSocket `notification` and REST list)."""
    return {
        "id": message.id,
        "title": message.title,
        "body": message.body,
        "data": message.data,
        "created_at": message.created_at.isoformat(),
        "read_at": message.read_at.isoformat() if message.read_at else None,
    }


def group_publish(recipient_id: int, event: dict[str, Any]) -> None:
    """Send `event` to every socket of the recipient (from sync code). Raises if Redis fails."""
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - CHANNEL_LAYERS is always configured
        raise RuntimeError("no channel layer configured")
    async_to_sync(layer.group_send)(inbox_group(recipient_id), event)


def publish_notification(message: InboxMessage) -> None:
    group_publish(
        message.recipient_id, {"type": NOTIFICATION_EVENT, "message": message_payload(message)}
    )


def publish_unread(
    recipient_id: int, *, count: int, read: list[int] | None = None, read_all: bool = False
) -> None:
    """Tell the recipient's sockets the new unread count, and which messages were read."""
    event = {"type": UNREAD_EVENT, "count": count, "read": read or [], "read_all": read_all}
    try:
        group_publish(recipient_id, event)
    except Exception:
        # The read is committed; a lost count update is corrected on the next connect.
        logger.exception("inbox unread push failed", extra={"recipient_id": recipient_id})
