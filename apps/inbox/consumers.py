"""The inbox WebSocket: `/ws/inbox?token=<recipient token>[&since=<last id>]`.

It relays. On connect it authenticates, joins the recipient's group and reads the unread count
(and, with `since=`, the messages the client missed); after that it forwards what the channel
layer brings and keeps the socket alive. No database writes; one read per ping (the recipient's
newest message id, so the client can tell that the layer dropped something).

A socket lives no longer than the token it was opened with: at the token's expiry it is closed
with 4401, as a connect with an expired token is, and the client reconnects with a fresh token
and `since=` (nothing is missed). The Origin check is config/asgi.py's (apps/inbox/origins.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.core import metrics
from apps.inbox.realtime import (
    inbox_group,
    inbox_snapshot,
    since_parse,
    token_recipient,
    unread_content,
)
from apps.inbox.selectors import inbox_latest_id

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's).
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_IDLE = 4408


class InboxConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    recipient_id: int | None = None
    heartbeat: asyncio.Task[None] | None = None
    expiry: asyncio.Task[None] | None = None
    expires_at: float = 0.0  # the token's expiry, as a Unix timestamp

    async def connect(self) -> None:
        # Accept first: a close before the handshake is an HTTP 403, and clients need 4401.
        await self.accept()
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        verified = await database_sync_to_async(token_recipient)(_first(params, "token"))
        if verified is None:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        recipient_id, expires_at = verified
        try:
            since = since_parse(_first(params, "since"))
        except ValueError:  # the client's error, not ours
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.recipient_id = recipient_id
        self.replayed: set[int] = set()
        self.expires_at = expires_at.timestamp()
        self.expiry = asyncio.create_task(self._close_at_expiry())
        # Join before reading, so nothing stored meanwhile can fall between the two.
        await self.channel_layer.group_add(inbox_group(recipient_id), self.channel_name)
        metrics.websocket_opened()
        counts, missed = await database_sync_to_async(inbox_snapshot)(recipient_id, since)
        # The missed messages first, then the count: a client sets its badge from the count.
        for payload in missed:
            self.replayed.add(payload["id"])
            await self._send({"type": "notification", **payload})
        await self._send({"type": "unread_count", **counts})
        self.last_seen = asyncio.get_running_loop().time()
        self.heartbeat = asyncio.create_task(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        if self.expiry is not None:
            self.expiry.cancel()
        if self.recipient_id is not None:
            metrics.websocket_closed()
            await self.channel_layer.group_discard(
                inbox_group(self.recipient_id), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Any frame proves the client alive; `{"type": "ping"}` is answered with a pong."""
        self.last_seen = asyncio.get_running_loop().time()
        try:
            content = json.loads(text_data) if text_data else None
        except ValueError:
            return
        if isinstance(content, dict) and content.get("type") == "ping":
            await self._send({"type": "pong"})

    # --- channel layer events ------------------------------------------------------------

    async def inbox_notification(self, event: dict[str, Any]) -> None:
        payload = event["message"]
        if payload["id"] in self.replayed:  # already sent during catch-up
            return
        if self._expired():  # the close is due (timers can run late on a busy loop)
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self._send({"type": "notification", **payload})

    async def inbox_unread(self, event: dict[str, Any]) -> None:
        if self._expired():
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self._send(unread_content(event))

    # --- internals -----------------------------------------------------------------------

    async def _close_at_expiry(self) -> None:
        await asyncio.sleep(max(0.0, self.expires_at - time.time()))
        await self.close(code=CLOSE_UNAUTHORIZED)

    def _expired(self) -> bool:
        return bool(self.expires_at) and time.time() >= self.expires_at

    async def _send(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))

    async def _heartbeat(self) -> None:
        """Ping every INBOX_PING_SECONDS; close a socket silent for INBOX_IDLE_SECONDS.

        The first ping comes after a random part of the interval: sockets that connected
        together (a page load wave, every client reconnecting after a deploy) would otherwise
        be pinged together forever, a burst of work every interval that delays the
        notifications caught in it.
        """
        loop = asyncio.get_running_loop()
        interval = settings.INBOX_PING_SECONDS
        delay = random.uniform(0, interval)  # noqa: S311 - spreading load, not a secret
        while True:
            await asyncio.sleep(delay)
            delay = interval
            if loop.time() - self.last_seen > settings.INBOX_IDLE_SECONDS:
                await self.close(code=CLOSE_IDLE)
                return
            await self._send({"type": "ping", "latest_id": await self._latest_id()})

    async def _latest_id(self) -> int | None:
        """The recipient's newest message id, for the ping: a client that has not seen it lost
        a live message (channels-redis drops past capacity or expiry) and fetches it. None when
        the database does not answer: the ping still proves the link alive."""
        if self.recipient_id is None:  # not reached: the heartbeat starts after authentication
            return None
        try:
            latest: int | None = await database_sync_to_async(inbox_latest_id)(
                recipient_id=self.recipient_id
            )
        except Exception:
            logger.warning("inbox ping: latest id unavailable", exc_info=True)
            return None
        return latest


def _first(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name)
    return values[0] if values else ""
