"""Writes for topics: create or update, delete, subscribe and unsubscribe recipients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from apps.clients.models import ApiClient
from apps.core.errors import InvalidInput
from apps.recipients.models import Recipient
from apps.recipients.services import recipients_upsert_inline
from apps.topics.models import Subscription, Topic


def topic_put(
    *, client: ApiClient, key: str, name: str | None, description: str | None
) -> tuple[Topic, bool]:
    """Create the topic or update the fields given. Returns it and whether it was created."""
    defaults = {
        field: value
        for field, value in (("name", name), ("description", description))
        if value is not None
    }
    return Topic.objects.update_or_create(client=client, key=key, defaults=defaults)


def topic_delete(*, topic: Topic) -> None:
    """Delete the topic and its subscriptions (a fan-out under way stops at its next chunk)."""
    topic.delete()


def _recipients(topic: Topic, external_ids: Sequence[str], *, strict: bool) -> list[Recipient]:
    wanted = list(dict.fromkeys(external_ids))
    rows = list(
        Recipient.objects.filter(
            client_id=topic.client_id, external_id__in=wanted, erased_at__isnull=True
        ).only("pk", "external_id")
    )
    if strict:
        found = {r.external_id for r in rows}
        unknown = [r for r in wanted if r not in found]
        if unknown:
            raise InvalidInput(
                f"Unknown recipients: {', '.join(unknown[:10])}.",
                fields={"recipients": [f"unknown recipient {r!r}" for r in unknown[:50]]},
            )
    return rows


@transaction.atomic
def subscribers_add(
    *,
    topic: Topic,
    external_ids: Sequence[str],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> int:
    """Subscribe these recipients (all known, or nothing changes). `profiles`: the inline
    recipients' fields by external id, created or updated first in this transaction (as a
    notification's inline recipients: one upsert, row locks in external id order). Idempotent:
    a recipient already subscribed stays so, once. Returns how many were new."""
    if profiles:
        recipients_upsert_inline(client=topic.client, profiles=profiles)
    recipients = _recipients(topic, external_ids, strict=True)
    already = set(
        Subscription.objects.filter(topic=topic, recipient__in=recipients).values_list(
            "recipient_id", flat=True
        )
    )
    new = [Subscription(topic=topic, recipient=r) for r in recipients if r.pk not in already]
    # A concurrent call adding the same recipient: the unique constraint keeps one row.
    Subscription.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def subscribers_remove(*, topic: Topic, external_ids: Sequence[str]) -> int:
    """Unsubscribe these recipients (unknown or not subscribed: nothing to do). Returns how many
    subscriptions were removed."""
    recipients = _recipients(topic, external_ids, strict=False)
    removed, _ = Subscription.objects.filter(topic=topic, recipient__in=recipients).delete()
    return removed


def subscriptions_erase(*, recipient: Recipient, **_: Any) -> None:
    """An erased recipient follows nothing (recipient_erasing, inside the erasure's
    transaction)."""
    Subscription.objects.filter(recipient=recipient).delete()
