"""The inbox as Server-Sent Events: `GET /api/v1/inbox/stream`, the WebSocket's alternative
for clients (or proxies) that cannot open one.

The same messages as the socket (apps/inbox/consumers.py), as `data:` lines of JSON: on
connect the missed messages (`Last-Event-ID`, or `since=` for a fresh EventSource) then the
counts, after that what the channel layer brings, and a `ping` with the newest id every
INBOX_PING_SECONDS. A `notification` carries its id as the event's `id:`, so the browser's
automatic reconnect sends `Last-Event-ID` and gets what was stored after it (two inapp
workers can publish out of order: docs/inbox.md's caveat). A comment line every
INBOX_STREAM_HEARTBEAT_SECONDS keeps proxies from timing the stream out.

Auth is the recipient token, as `Authorization: Recipient <token>` or `?token=` (a browser's
EventSource cannot set headers). A bad token is a 401 before the stream starts; when the token
expires the stream sends `{"type": "expired"}` and ends (the WebSocket's 4401).

An async view: it needs the ASGI server (uvicorn), which holds a stream for the price of a
coroutine. Not a thread: Django gives each ASGI request a ThreadSensitiveContext, whose
executor thread (started by the request_started signal's handlers) lives as long as the
request, so the stream shuts that executor down when it starts (`_release_request_thread`),
and its database reads run with `thread_sensitive=False`, in the event loop's shared executor
(a few threads for every stream). Under a WSGI server a
stream would hold a thread forever (and Django would buffer it whole), so there it answers
503 with Retry-After; production routes this path to uvicorn (docker/nginx).
Per connection the memory is bounded: the channel layer keeps at most its `capacity` messages
for the stream's channel, and the catch-up at most INBOX_CATCHUP_LIMIT. A recipient holds at
most INBOX_STREAMS_PER_RECIPIENT streams per process (beyond: 429 with Retry-After); the
`notifier_inbox_streams` gauge counts the open ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from apps.core import metrics
from apps.core.errors import dependency_unavailable, error_body
from apps.inbox.realtime import (
    NOTIFICATION_EVENT,
    UNREAD_EVENT,
    inbox_group,
    inbox_snapshot,
    since_parse,
    token_recipient,
    unread_content,
)
from apps.inbox.selectors import inbox_latest_id

logger = logging.getLogger(__name__)

RETRY_MS = 3000  # the browser's own reconnect delay (the bell element backs off on its own)
RETRY_AFTER_SECONDS = 30  # 429 (too many streams) and 503 (not the ASGI server)

_open_streams: Counter[int] = Counter()  # recipient id -> streams open on this process
_open_lock = threading.Lock()  # released from Django's response.close(), in a thread


def _db(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` on the loop's shared executor (see the module's docstring)."""
    wrapped: Callable[..., Any] = database_sync_to_async(func, thread_sensitive=False)
    return wrapped


def _event(content: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}data: {json.dumps(content)}\n\n"


def _token(request: HttpRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "recipient":
        return value.strip()
    return request.GET.get("token", "")


def _error(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: int = RETRY_AFTER_SECONDS,
    fields: dict[str, list[str]] | None = None,
) -> JsonResponse:
    response = JsonResponse(error_body(code, message, fields), status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Recipient"
    if status in (429, 503):
        response["Retry-After"] = str(retry_after)
    return response


def _release_request_thread() -> None:
    """Shut down this request's thread-sensitive executor (its thread idles from here on);
    a later thread-sensitive call, Django's `response.close()`, starts one that ends with the
    request. (asgiref keeps the executor per context in these class attributes.)"""
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is not None:
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
        if executor is not None:
            executor.shutdown(wait=False)


class _Slot:
    """One of the recipient's open streams: taken in the view, given back once, by the
    stream's end or by Django's `response.close()` (which also runs when the stream never
    started: the client went away first)."""

    def __init__(self, recipient_id: int) -> None:
        self.recipient_id = recipient_id
        self.held = False

    def take(self) -> bool:
        with _open_lock:
            if _open_streams[self.recipient_id] >= settings.INBOX_STREAMS_PER_RECIPIENT:
                return False
            _open_streams[self.recipient_id] += 1
            self.held = True
        metrics.inbox_stream_opened()
        return True

    def close(self) -> None:
        with _open_lock:
            if not self.held:
                return
            self.held = False
            _open_streams[self.recipient_id] -= 1
            if _open_streams[self.recipient_id] <= 0:
                del _open_streams[self.recipient_id]
        metrics.inbox_stream_closed()


class _Stream:
    """The response's content: the events, and the slot closed with the response."""

    def __init__(self, events: AsyncIterator[str], slot: _Slot) -> None:
        self.events, self.close = events, slot.close

    def __aiter__(self) -> AsyncIterator[str]:
        return self.events


@require_GET
async def inbox_stream(request: HttpRequest) -> HttpResponseBase:
    """Open the recipient's event stream (see the module's docstring)."""
    if not isinstance(request, ASGIRequest):
        return _error(
            503, "unavailable", "The event stream is served by the ASGI server (uvicorn) only."
        )
    verified = await _db(token_recipient)(_token(request))
    if verified is None:
        return _error(401, "authentication_failed", "Invalid or expired recipient token.")
    recipient_id, expires_at = verified
    # The browser's reconnect sends Last-Event-ID; it is newer than a `since=` in the URL.
    field, raw = "Last-Event-ID", request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        field, raw = "since", request.GET.get("since", "")
    try:
        since = since_parse(raw)
    except ValueError:
        return _error(
            400, "invalid", "Invalid request.", fields={field: ["Expected a message id."]}
        )
    slot = _Slot(recipient_id)
    if not slot.take():
        return _error(
            429,
            "throttled",
            f"At most {settings.INBOX_STREAMS_PER_RECIPIENT} open event streams per recipient.",
        )
    # Joined and read before the headers go out: Redis or the database down is a 503 the
    # client retries, not a 200 whose stream ends at once.
    try:
        joined = await _join(recipient_id, since)
    except BaseException as exc:  # cancelled too: no response will give the slot back
        slot.close()
        unavailable = dependency_unavailable(exc) if isinstance(exc, Exception) else None
        if unavailable is None:
            raise
        return _error(
            503, unavailable.code, unavailable.message, retry_after=unavailable.retry_after
        )
    events = _events(joined, expires_at.timestamp(), slot)
    response = StreamingHttpResponse(_Stream(events, slot), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@dataclass(frozen=True)
class _Joined:
    """The stream's channel, in the recipient's group, and what the stream starts with."""

    layer: Any
    recipient_id: int
    group: str
    channel: str
    counts: dict[str, Any]
    missed: list[dict[str, Any]]


async def _join(recipient_id: int, since: int | None) -> _Joined:
    """Join the recipient's group, then read the counts and the missed messages (joined
    first, so nothing stored meanwhile can fall between the two). Leaves the group again if
    the read fails."""
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - CHANNEL_LAYERS is always configured
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel()
    group = inbox_group(recipient_id)
    await layer.group_add(group, channel)
    try:
        counts, missed = await _db(inbox_snapshot)(recipient_id, since)
    except BaseException:
        with contextlib.suppress(Exception):  # the layer may be what is down
            await layer.group_discard(group, channel)
        raise
    return _Joined(layer, recipient_id, group, channel, counts, missed)


async def _events(joined: _Joined, expires_at: float, slot: _Slot) -> AsyncIterator[str]:
    _release_request_thread()
    layer, channel, recipient_id = joined.layer, joined.channel, joined.recipient_id
    counts, missed = joined.counts, joined.missed
    receiving: asyncio.Task[dict[str, Any]] | None = None
    try:
        yield f"retry: {RETRY_MS}\n\n"
        replayed = {payload["id"] for payload in missed}
        for payload in missed:
            yield _event({"type": "notification", **payload}, payload["id"])
        yield _event({"type": "unread_count", **counts})
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + settings.INBOX_STREAM_HEARTBEAT_SECONDS
        next_ping = loop.time() + settings.INBOX_PING_SECONDS
        while True:
            remaining = expires_at - time.time()
            if remaining <= 0:
                yield _event({"type": "expired"})
                return
            if receiving is None:
                receiving = asyncio.ensure_future(layer.receive(channel))
            wait = min(next_beat, next_ping) - loop.time()
            done, _ = await asyncio.wait({receiving}, timeout=max(0.0, min(wait, remaining)))
            if done:
                event, receiving = receiving.result(), None
                content = _relay(event, replayed)
                if content is not None and time.time() < expires_at:
                    yield _event(content, content.get("id"))
            now = loop.time()
            if now >= next_ping:
                next_ping = now + settings.INBOX_PING_SECONDS
                yield _event({"type": "ping", "latest_id": await _latest_id(recipient_id)})
                next_beat = now + settings.INBOX_STREAM_HEARTBEAT_SECONDS
            elif now >= next_beat:
                next_beat = now + settings.INBOX_STREAM_HEARTBEAT_SECONDS
                yield ": keep-alive\n\n"
    finally:
        # Reached on a clean end, and when the client goes away (Django cancels the response).
        slot.close()
        if receiving is not None:
            receiving.cancel()
        await layer.group_discard(joined.group, channel)


def _relay(event: dict[str, Any], replayed: set[int]) -> dict[str, Any] | None:
    """The client's message for a layer event (None: nothing to send)."""
    if event.get("type") == NOTIFICATION_EVENT:
        payload = event["message"]
        if payload["id"] in replayed:  # already sent during catch-up
            replayed.discard(payload["id"])
            return None
        return {"type": "notification", **payload}
    if event.get("type") == UNREAD_EVENT:
        return unread_content(event)
    return None


async def _latest_id(recipient_id: int) -> int | None:
    """The recipient's newest message id (None when the database does not answer: the ping
    still proves the stream alive), as the socket's ping."""
    try:
        latest: int | None = await _db(inbox_latest_id)(recipient_id=recipient_id)
    except Exception:
        logger.warning("inbox stream ping: latest id unavailable", exc_info=True)
        return None
    return latest
