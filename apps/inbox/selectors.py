"""Reads of recipients' inboxes."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient


def inbox_messages(*, recipient: Recipient) -> QuerySet[InboxMessage]:
    """The recipient's messages, newest first."""
    return InboxMessage.objects.filter(recipient=recipient).order_by("-id")


def inbox_page(
    *, recipient: Recipient, before_id: int | None, limit: int, unread_only: bool = False
) -> tuple[list[InboxMessage], bool]:
    """One page, newest first, of messages older than `before_id`; and whether more follow."""
    query = inbox_messages(recipient=recipient)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    if unread_only:
        query = query.filter(read_at__isnull=True)
    rows = list(query[: limit + 1])
    return rows[:limit], len(rows) > limit


def inbox_unread_count(*, recipient_id: int) -> int:
    return InboxMessage.objects.filter(recipient_id=recipient_id, read_at__isnull=True).count()


def inbox_unseen_count(*, recipient_id: int) -> int:
    return InboxMessage.objects.filter(recipient_id=recipient_id, seen_at__isnull=True).count()


def inbox_since(*, recipient_id: int, after_id: int, limit: int) -> list[InboxMessage]:
    """Messages newer than `after_id`, oldest first: what a reconnecting client missed."""
    return list(
        InboxMessage.objects.filter(recipient_id=recipient_id, id__gt=after_id).order_by("id")[
            :limit
        ]
    )


def inbox_latest_id(*, recipient_id: int) -> int | None:
    """The id of the recipient's newest message (None for an empty inbox)."""
    return (
        InboxMessage.objects.filter(recipient_id=recipient_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )


def inbox_previous_id(*, recipient_id: int, before_id: int) -> int | None:
    """The id of the recipient's message just before `before_id` (None if there is none)."""
    return (
        InboxMessage.objects.filter(recipient_id=recipient_id, id__lt=before_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
