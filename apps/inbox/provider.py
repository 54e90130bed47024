"""The `inapp` channel's "provider": the inbox itself (store, then push over the channel layer).

It lives in apps/ rather than notifier/providers/ because it writes the database.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from apps.inbox.services import inbox_message_deliver
from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage, SendResult


class InboxProvider:
    name = "inbox"

    def send(self, message: OutboundMessage) -> SendResult:
        """Stored once per delivery; a retry re-pushes the same message (clients dedupe by id)."""
        if message.recipient_id is None:  # pragma: no cover - sending.py always sets it
            raise PermanentFailure("in-app message without a recipient")
        try:
            stored = inbox_message_deliver(
                delivery_id=message.delivery_id,
                recipient_id=message.recipient_id,
                title=message.title,
                body=message.body,
                data=message.data,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            raise TransientFailure("channel layer unavailable", detail=str(exc)[:200]) from exc
        return SendResult(provider_message_id=f"inbox-{stored.id}")
