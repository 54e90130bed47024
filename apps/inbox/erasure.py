"""GDPR erasure of a recipient's inbox (called by the recipients app)."""

from __future__ import annotations

from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient


def inbox_erase(*, recipient: Recipient) -> int:
    """Delete every inbox message of `recipient`. Returns how many went."""
    deleted, _ = InboxMessage.objects.filter(recipient=recipient).delete()
    return deleted
