"""Writes to recipients' inboxes: store a delivered in-app message, mark messages read."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import NotFound
from apps.inbox.models import InboxMessage
from apps.inbox.realtime import publish_notification, publish_unread
from apps.inbox.selectors import inbox_unread_count
from apps.inbox.signals import messages_read
from apps.recipients.models import Recipient

MAX_MESSAGE_ID = 2**63 - 1  # bigint primary key


def inbox_message_store(
    *, delivery_id: str, recipient_id: int, title: str, body: str, data: dict[str, Any]
) -> InboxMessage:
    """The delivery's inbox message, created once: a retried delivery finds the first one."""
    message, _created = InboxMessage.objects.get_or_create(
        delivery_id=delivery_id,
        defaults={"recipient_id": recipient_id, "title": title, "body": body, "data": data},
    )
    return message


def inbox_message_deliver(
    *, delivery_id: str, recipient_id: int, title: str, body: str, data: dict[str, Any]
) -> InboxMessage:
    """Store the message, then push it to the recipient's open sockets (through Redis)."""
    message = inbox_message_store(
        delivery_id=delivery_id, recipient_id=recipient_id, title=title, body=body, data=data
    )
    publish_notification(message)
    return message


def inbox_message_read(*, recipient: Recipient, message_id: int) -> InboxMessage:
    """Mark one of the recipient's messages read (idempotent); its delivery becomes `read`."""
    if not 0 < message_id <= MAX_MESSAGE_ID:
        raise NotFound("No such message.")
    with transaction.atomic():
        message = (
            InboxMessage.objects.select_for_update()
            .filter(recipient=recipient, id=message_id)
            .first()
        )
        if message is None:
            raise NotFound("No such message.")
        if message.read_at is not None:
            return message
        message.read_at = timezone.now()
        message.save(update_fields=["read_at"])
        if message.delivery_id is not None:
            messages_read.send(sender=InboxMessage, delivery_ids=[message.delivery_id])
        _publish_count_on_commit(recipient.pk, read=[message.id])
    return message


def inbox_read_all(*, recipient: Recipient) -> int:
    """Mark every unread message of the recipient read; the number marked."""
    with transaction.atomic():
        unread = InboxMessage.objects.select_for_update().filter(
            recipient=recipient, read_at__isnull=True
        )
        rows = list(unread.values_list("id", "delivery_id"))
        if not rows:
            return 0
        InboxMessage.objects.filter(id__in=[r[0] for r in rows]).update(read_at=timezone.now())
        delivered = [r[1] for r in rows if r[1] is not None]
        if delivered:
            messages_read.send(sender=InboxMessage, delivery_ids=delivered)
        _publish_count_on_commit(recipient.pk, read_all=True)
    return len(rows)


def _publish_count_on_commit(
    recipient_id: int, *, read: list[int] | None = None, read_all: bool = False
) -> None:
    def publish() -> None:
        count = inbox_unread_count(recipient_id=recipient_id)
        publish_unread(recipient_id, count=count, read=read, read_all=read_all)

    transaction.on_commit(publish)
