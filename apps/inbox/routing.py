"""WebSocket routes (the inbox consumer)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from apps.inbox.consumers import InboxConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/inbox", InboxConsumer.as_asgi()),
]
