"""Confirmations that arrive after a delivery was sent (for now: an in-app message was read).

The inbox announces reads (apps.inbox.signals.messages_read) without importing this app; this
app's AppConfig.ready() connects the receiver below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from apps.deliveries.lifecycle import deliveries_read, deliveries_seen


def deliveries_read_on_inbox_read(*, delivery_ids: Sequence[UUID | str], **_signal: Any) -> None:
    """The recipient read these deliveries' inbox messages: `read` (inside the inbox's
    transaction)."""
    deliveries_read(delivery_ids=delivery_ids)


def deliveries_seen_on_inbox_seen(*, delivery_ids: Sequence[UUID | str], **_signal: Any) -> None:
    """The recipient saw these deliveries' inbox messages (the bell opened): escalation steps
    waiting on `seen` stand down (inside the inbox's transaction)."""
    deliveries_seen(delivery_ids=delivery_ids)
