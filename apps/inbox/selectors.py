"""Reads of recipients' inboxes."""

from __future__ import annotations

from django.db import models
from django.db.models import QuerySet

from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient


class InboxStatus(models.TextChoices):
    """`GET /inbox?status=`: which messages a page lists (none: every message not archived)."""

    UNREAD = "unread"
    UNSEEN = "unseen"
    ARCHIVED = "archived"


def inbox_messages(*, recipient: Recipient) -> QuerySet[InboxMessage]:
    """The recipient's messages (archived ones too), newest first."""
    return InboxMessage.objects.filter(recipient=recipient).order_by("-id")


def _active(recipient_id: int) -> QuerySet[InboxMessage]:
    """The recipient's messages that are not archived: what the bell shows and counts."""
    return InboxMessage.objects.filter(recipient_id=recipient_id, archived_at__isnull=True)


def inbox_page(
    *,
    recipient: Recipient,
    before_id: int | None,
    limit: int,
    unread_only: bool = False,
    status: str | None = None,
) -> tuple[list[InboxMessage], bool]:
    """One page, newest first, of messages older than `before_id`; and whether more follow.
    Archived messages are listed only with `status="archived"`."""
    query = inbox_messages(recipient=recipient)
    if status == InboxStatus.ARCHIVED:
        query = query.filter(archived_at__isnull=False)
    else:
        query = query.filter(archived_at__isnull=True)
    if status == InboxStatus.UNSEEN:
        query = query.filter(seen_at__isnull=True)
    if unread_only or status == InboxStatus.UNREAD:
        query = query.filter(read_at__isnull=True)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    rows = list(query[: limit + 1])
    return rows[:limit], len(rows) > limit


def inbox_unread_count(*, recipient_id: int) -> int:
    """Unread messages not archived (the bell's badge)."""
    return _active(recipient_id).filter(read_at__isnull=True).count()


def inbox_unseen_count(*, recipient_id: int) -> int:
    """Messages not yet seen, not archived."""
    return _active(recipient_id).filter(seen_at__isnull=True).count()


def inbox_since(*, recipient_id: int, after_id: int, limit: int) -> list[InboxMessage]:
    """Messages newer than `after_id` (not archived), oldest first: what a reconnecting
    client missed."""
    return list(_active(recipient_id).filter(id__gt=after_id).order_by("id")[:limit])


def inbox_latest_id(*, recipient_id: int) -> int | None:
    """The id of the recipient's newest message not archived (None for an empty inbox)."""
    return _active(recipient_id).order_by("-id").values_list("id", flat=True).first()


def inbox_previous_id(*, recipient_id: int, before_id: int) -> int | None:
    """The id of the recipient's message (not archived) just before `before_id` (None if
    there is none): what a client holding the live list should already have."""
    return (
        _active(recipient_id)
        .filter(id__lt=before_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
