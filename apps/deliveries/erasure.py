"""GDPR erasure of what the apps above recipients keep about a recipient: its inbox and its
delivery history. recipients.services.recipient_erase erases the profile and announces it
(recipients.signals.recipient_erasing); `recipient_history_erase`, connected in this app's
AppConfig.ready(), is the one place that erases the rest.

History stays countable (statuses, timings, attempts) but no longer says who it was for or
what it said: pending deliveries are cancelled, provider error texts (which can echo an
address) are blanked, reasons and event details keep their words but lose every address,
number and device token (apps/recipients/personal_data.py), single-recipient notifications
lose their variables and bulk ones the erased recipient's values. Notifications that skipped
the external id (unknown then) name the alias instead, in `skipped` and in their stored 202.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.deliveries.lifecycle import deliveries_cancel, digest_windows_close_empty
from apps.deliveries.models import (
    CANCELLABLE,
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryEvent,
    Digest,
    Notification,
)
from apps.inbox.erasure import inbox_erase
from apps.recipients.models import Recipient
from apps.recipients.personal_data import PersonalData

ERASED_REASON = "recipient erased"


def _anonymised_entries(entries: Any, external_id: str, alias: str) -> list[Any]:
    """Delivery summaries or skipped ids ({"recipient": ...}) naming the alias instead."""
    return [
        {**e, "recipient": alias} if e.get("recipient") == external_id else e
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict)
    ]


def _anonymised_response(response: Any, external_id: str, alias: str) -> Any:
    if not isinstance(response, dict):
        return {}
    return {
        **response,
        **{
            key: _anonymised_entries(response[key], external_id, alias)
            for key in ("deliveries", "skipped")
            if key in response
        },
    }


BATCH = 500


def recipient_history_erase(
    *, recipient: Recipient, alias: str, personal: PersonalData, **_signal: Any
) -> None:
    """Erase the recipient's inbox and anonymise its delivery history (inside the erasure's
    transaction)."""
    inbox_erase(recipient=recipient)
    deliveries_anonymise(recipient=recipient, alias=alias, personal=personal)


@transaction.atomic
def _digests_erase(recipient: Recipient) -> list[Delivery]:
    """The recipient's open windows close empty, their items cancelled with the erasure reason
    (nothing is sent to an erased recipient; the lifecycle locks each window as a close does, so
    a request joining one meanwhile commits first and its item goes too), and every window's
    key, rendered from their data, is blanked. Returns the items that left."""
    left = digest_windows_close_empty(
        recipient_id=recipient.pk, reason=ERASED_REASON, now=timezone.now()
    )
    # After the close: the one-open-window-per-key constraint would refuse two blank open keys.
    Digest.objects.filter(recipient=recipient).exclude(key="").update(key="")
    return left


def deliveries_anonymise(*, recipient: Recipient, alias: str, personal: PersonalData) -> int:
    """Cancel the recipient's unsent deliveries and strip personal data from their history:
    `personal`'s values (plus the device tokens found here, which it gains) and anything shaped
    like an address or a number in the recipient's own rows, only `personal`'s values in
    notifications shared with others. Returns how many deliveries were cancelled."""
    # The windows first: locking them waits for a sweep closing one, whose digest delivery
    # (made and committed meanwhile, its FK check not blocked by our NO KEY UPDATE) the
    # pending deliveries, read after that wait, then include.
    cancelled = _digests_erase(recipient)
    pending = list(
        Delivery.objects.select_for_update()
        .filter(recipient=recipient, status__in=CANCELLABLE)
        .order_by("id")
    )
    cancelled += deliveries_cancel(pending, reason=ERASED_REASON)
    # Device tokens are personal data too: those that had a push, even if since removed.
    mine = Delivery.objects.filter(recipient=recipient)
    for accepted in mine.exclude(push_accepted={}).values_list("push_accepted", flat=True):
        personal.add(accepted if isinstance(accepted, dict) else ())
    mine.exclude(push_accepted={}).update(push_accepted={})
    # Provider error texts echo addresses; nothing in them is needed once the person is gone.
    Attempt.objects.filter(delivery__recipient=recipient).exclude(error="").update(error="")
    DeadLetter.objects.filter(delivery__recipient=recipient).exclude(last_error="").update(
        last_error=""
    )
    _scrub_rows(mine.exclude(reason=""), "reason", personal)
    _scrub_rows(
        DeliveryEvent.objects.filter(delivery__recipient=recipient).exclude(detail=""),
        "detail",
        personal,
    )
    _scrub_rows(DeadLetter.objects.filter(delivery__recipient=recipient), "reason", personal)
    notification_ids = set(
        Notification.objects.filter(deliveries__recipient=recipient).values_list("id", flat=True)
    )
    # Requests that named the id before the recipient existed kept it in `skipped` only.
    skipped_in = Notification.objects.filter(
        client_id=recipient.client_id, skipped__contains=[{"recipient": recipient.external_id}]
    ).values_list("id", flat=True)
    for notification in (
        Notification.objects.select_for_update()
        .filter(id__in=notification_ids | set(skipped_in))
        .order_by("id")
    ):
        own = notification.id in notification_ids and notification.recipient_count == 1
        notification.variables = (
            {} if own else personal.scrub_json(notification.variables, own=False)
        )
        notification.response = personal.scrub_json(
            _anonymised_response(notification.response, recipient.external_id, alias), own=own
        )
        notification.skipped = _anonymised_entries(
            notification.skipped, recipient.external_id, alias
        )
        notification.save(update_fields=["variables", "response", "skipped"])
    return len(cancelled)


def _scrub_rows(rows: QuerySet[Any], column: str, personal: PersonalData) -> None:
    """Rewrite `column` of `rows` (all of the erased recipient's own) without personal data."""
    changed = []
    limit = rows.model._meta.get_field(column).max_length
    for row in rows.only("pk", column).iterator(chunk_size=BATCH):
        before = getattr(row, column)
        after = personal.scrub_text(before, own=True)[:limit]
        if after != before:
            setattr(row, column, after)
            changed.append(row)
    rows.model.objects.bulk_update(changed, [column], batch_size=BATCH)
