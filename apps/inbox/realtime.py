"""The Channels side of the inbox: group names, the events sent to them, and what both live
transports (the WebSocket, apps/inbox/consumers.py, and Server-Sent Events,
apps/inbox/stream.py) send a client.

Producers (the inapp worker, the REST mark-read endpoints) publish through the channel layer,
which is Redis: a message sent from any process reaches a socket on any ASGI server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.validation import BIGINT_MAX
from apps.inbox.models import InboxMessage
from apps.inbox.selectors import (
    inbox_previous_id,
    inbox_since,
    inbox_unread_count,
    inbox_unseen_count,
)
from apps.recipients.tokens import recipient_token_check

logger = logging.getLogger(__name__)

# Channels' handler names: "inbox.notification" is dispatched to `inbox_notification`.
NOTIFICATION_EVENT = "inbox.notification"
UNREAD_EVENT = "inbox.unread"


def inbox_group(recipient_id: int) -> str:
    return f"inbox.{recipient_id}"


def since_parse(raw: str) -> int | None:
    """A client's `since=` (or `Last-Event-ID`): ASCII digits within bigint. Raises ValueError
    for anything else (str.isdigit() also takes "²", which int() refuses); "" is None."""
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > BIGINT_MAX:
        raise ValueError(raw)
    return int(raw)


def token_recipient(token: str) -> tuple[int, dt.datetime] | None:
    """The token's recipient id and its expiry; None for a bad, expired or unknown token."""
    checked = recipient_token_check(token) if token else None
    return (checked.recipient.pk, checked.expires_at) if checked is not None else None


def inbox_snapshot(
    recipient_id: int, since: int | None
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """What a (re)connecting client is sent first: the counts, and with `since` the messages
    it missed (oldest first, at most INBOX_CATCHUP_LIMIT)."""
    counts = {
        "count": inbox_unread_count(recipient_id=recipient_id),
        "unseen": inbox_unseen_count(recipient_id=recipient_id),
    }
    if since is None:
        return counts, []
    missed = inbox_since(
        recipient_id=recipient_id, after_id=since, limit=settings.INBOX_CATCHUP_LIMIT
    )
    return counts, [message_payload(m) for m in missed]


def unread_content(event: dict[str, Any]) -> dict[str, Any]:
    """The client's `unread_count` message for an UNREAD_EVENT from the layer."""
    content = {
        "type": "unread_count",
        "count": event["count"],
        "read": event.get("read") or [],
        "read_all": bool(event.get("read_all")),
    }
    for key in ("unseen", "archived", "unarchived"):  # present only when they say something
        if key in event:
            content[key] = event[key]
    return content


def message_payload(message: InboxMessage) -> dict[str, Any]:
    """What a client receives for one message (WebSocket `notification` and REST list)."""
    return {
        "id": message.id,
        "title": message.title,
        "body": message.body,
        "data": message.data,
        "created_at": message.created_at.isoformat(),
        "read_at": message.read_at.isoformat() if message.read_at else None,
        "seen_at": message.seen_at.isoformat() if message.seen_at else None,
    }


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on its own thread, for publishing from sync code.

    channels-redis keeps its connection pool per event loop; `async_to_sync` would run each
    publish on a fresh loop, i.e. open (and close) a Redis connection per message.
    """
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="inbox-publisher", daemon=True).start()
            _loop = loop
        return _loop


def group_publish(recipient_id: int, event: dict[str, Any]) -> None:
    """Send `event` to every socket of the recipient (from sync code). Raises if Redis fails
    or does not answer within PROVIDER_TIMEOUT_SECONDS (TimeoutError)."""
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - CHANNEL_LAYERS is always configured
        raise RuntimeError("no channel layer configured")
    sent = asyncio.run_coroutine_threadsafe(
        layer.group_send(inbox_group(recipient_id), event), _publisher_loop()
    )
    try:
        sent.result(timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    except TimeoutError:
        sent.cancel()
        raise


def publish_notification(message: InboxMessage) -> None:
    """Push one stored message; it names the recipient's previous message (`prev_id`).

    channels-redis drops, silently, what a socket's channel cannot hold (past its capacity or
    expiry). A client that has not seen `prev_id` knows it missed something and fetches it.
    """
    prev_id = inbox_previous_id(recipient_id=message.recipient_id, before_id=message.id)
    group_publish(
        message.recipient_id,
        {"type": NOTIFICATION_EVENT, "message": {**message_payload(message), "prev_id": prev_id}},
    )


def publish_unread(
    recipient_id: int,
    *,
    count: int,
    unseen: int | None = None,
    read: list[int] | None = None,
    read_all: bool = False,
    archived: list[int] | None = None,
    unarchived: list[int] | None = None,
) -> None:
    """Tell the recipient's sockets the new unread (and unseen) counts, and which messages were
    read, archived or unarchived."""
    event: dict[str, Any] = {
        "type": UNREAD_EVENT,
        "count": count,
        "read": read or [],
        "read_all": read_all,
    }
    if unseen is not None:
        event["unseen"] = unseen
    if archived:
        event["archived"] = archived
    if unarchived:
        event["unarchived"] = unarchived
    try:
        group_publish(recipient_id, event)
    except Exception:
        # The read is committed; a lost count update is corrected on the next connect.
        logger.exception("inbox unread push failed", extra={"recipient_id": recipient_id})
