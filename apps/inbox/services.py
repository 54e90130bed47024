"""Writes to recipients' inboxes: store a delivered in-app message, mark messages read or
seen, archive and unarchive them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import NotFound
from apps.core.validation import BIGINT_MAX
from apps.inbox.models import InboxMessage
from apps.inbox.realtime import publish_notification, publish_unread
from apps.inbox.selectors import inbox_unread_count, inbox_unseen_count
from apps.inbox.signals import messages_read, messages_seen
from apps.recipients.models import Recipient


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
    with transaction.atomic():
        message = _locked_message(recipient, message_id)
        if message.read_at is not None:
            return message
        message.read_at = timezone.now()
        message.seen_at = message.seen_at or message.read_at  # read is seen too
        message.save(update_fields=["read_at", "seen_at"])
        if message.delivery_id is not None:
            messages_read.send(sender=InboxMessage, delivery_ids=[message.delivery_id])
        _publish_count_on_commit(recipient.pk, read=[message.id])
    return message


def inbox_read_all(*, recipient: Recipient) -> int:
    """Mark every unread message of the recipient read (not the archived ones: "all" is what
    the bell shows); the number marked."""
    with transaction.atomic():
        unread = InboxMessage.objects.select_for_update().filter(
            recipient=recipient, read_at__isnull=True, archived_at__isnull=True
        )
        # By id, as inbox_mark_seen locks them: opposite orders would deadlock the two.
        rows = list(unread.order_by("id").values_list("id", "delivery_id"))
        if not rows:
            return 0
        now = timezone.now()
        InboxMessage.objects.filter(id__in=[r[0] for r in rows]).update(read_at=now)
        InboxMessage.objects.filter(id__in=[r[0] for r in rows], seen_at__isnull=True).update(
            seen_at=now
        )
        delivered = [r[1] for r in rows if r[1] is not None]
        if delivered:
            messages_read.send(sender=InboxMessage, delivery_ids=delivered)
        _publish_count_on_commit(recipient.pk, read_all=True)
    return len(rows)


def inbox_mark_seen(*, recipient: Recipient, message_ids: list[int] | None = None) -> int:
    """Mark the listed messages (all when None) of the recipient seen: the bell was opened.
    Those not yet seen are announced (escalation steps waiting on `seen`); the number marked."""
    with transaction.atomic():
        unseen = InboxMessage.objects.select_for_update().filter(
            recipient=recipient, seen_at__isnull=True
        )
        if message_ids is not None:
            unseen = unseen.filter(id__in=message_ids)
        rows = list(unseen.order_by("id").values_list("id", "delivery_id"))
        if not rows:
            return 0
        InboxMessage.objects.filter(id__in=[r[0] for r in rows]).update(seen_at=timezone.now())
        delivered = [r[1] for r in rows if r[1] is not None]
        if delivered:
            messages_seen.send(sender=InboxMessage, delivery_ids=delivered)
        _publish_count_on_commit(recipient.pk)
    return len(rows)


def inbox_message_archive(
    *, recipient: Recipient, message_id: int, archived: bool = True
) -> InboxMessage:
    """Archive (or, with `archived=False`, unarchive) one of the recipient's messages
    (idempotent). Its read and seen state stay; it leaves (or rejoins) the counts."""
    with transaction.atomic():
        message = _locked_message(recipient, message_id)
        if (message.archived_at is not None) == archived:
            return message
        message.archived_at = timezone.now() if archived else None
        message.save(update_fields=["archived_at"])
        if archived:
            _publish_count_on_commit(recipient.pk, archived=[message.id])
        else:
            _publish_count_on_commit(recipient.pk, unarchived=[message.id])
    return message


def _locked_message(recipient: Recipient, message_id: int) -> InboxMessage:
    """One of the recipient's messages, locked for this transaction; NotFound otherwise (an id
    out of bigint's range too)."""
    message = None
    if 0 < message_id <= BIGINT_MAX:
        message = (
            InboxMessage.objects.select_for_update()
            .filter(recipient=recipient, id=message_id)
            .first()
        )
    if message is None:
        raise NotFound("No such message.")
    return message


def _publish_count_on_commit(
    recipient_id: int,
    *,
    read: list[int] | None = None,
    read_all: bool = False,
    archived: list[int] | None = None,
    unarchived: list[int] | None = None,
) -> None:
    def publish() -> None:
        count = inbox_unread_count(recipient_id=recipient_id)
        unseen = inbox_unseen_count(recipient_id=recipient_id)
        publish_unread(
            recipient_id,
            count=count,
            unseen=unseen,
            read=read,
            read_all=read_all,
            archived=archived,
            unarchived=unarchived,
        )

    transaction.on_commit(publish)
