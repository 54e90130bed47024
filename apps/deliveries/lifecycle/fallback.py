"""Fallback channels: when every requested channel of a notification has failed permanently for
a recipient, the notification's `fallback` channels are tried for that recipient, once.

A requested channel has failed permanently when its delivery is
- `dead`: a permanent failure or retries exhausted; either way the provider did not take it;
- `failed`: the provider accepted it, then reported a bounce, a drop or an undelivered SMS;
- `skipped` because the recipient cannot be reached there: no contact data (no address, no
  active device) or a suppressed address.
An opt-out does not count: the recipient chose not to hear on that channel, and a fallback would
route around that choice. Anything still in flight, sent, deferred or cancelled means no fallback.

Fallback deliveries carry `is_fallback=True`, go through the same routing rules (preferences,
suppressions, quiet hours, caps) as any delivery, and never trigger a fallback themselves.
A recipient over the notification's throttle has its fallback deliveries skipped, `throttled`,
as its requested ones are (the throttle counts notifications, not channels).
"Once" holds under concurrency: the check runs under a lock on the notification row (the last
requested channel to fail sees all the others), and the (notification, recipient, channel)
uniqueness means a fallback channel that was also requested is not sent twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import partial

from django.utils import timezone

from apps.deliveries.lifecycle.create import deliveries_create, delivery_new
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.recipients.models import Recipient
from apps.recipients.selectors import recipient_is_suppressed
from notifier.routing import Reason

FAILED_FOR_GOOD = (DeliveryStatus.DEAD, DeliveryStatus.FAILED)


def unreachable(delivery: Delivery) -> bool:
    """Whether this requested delivery has failed permanently (see the module docstring)."""
    if delivery.status in FAILED_FOR_GOOD:
        return True
    if delivery.status != DeliveryStatus.SKIPPED:
        return False
    code = Reason.of(delivery.reason)
    return code is not None and code.unreachable


def _build(
    notification: Notification,
    recipient: Recipient,
    channels: Iterable[str],
    *,
    send_at_respected: bool,
    suppressed: Callable[[str], bool],
    throttled: bool = False,
) -> list[Delivery]:
    now = timezone.now()
    return [
        delivery_new(
            notification,
            recipient,
            channel,
            send_at=notification.send_at if send_at_respected else None,
            now=now,
            suppressed=suppressed(channel),
            is_fallback=True,
            throttled=throttled,
        )
        for channel in channels
    ]


def fallback_after_failure(*, delivery: Delivery) -> list[Delivery]:
    """Called (inside the transaction) when a requested delivery has just died, failed or been
    skipped: create and queue the fallback deliveries if every requested channel has now failed.
    """
    if delivery.is_fallback or delivery.escalation_step or not unreachable(delivery):
        return []
    notification = Notification.objects.select_for_update().get(pk=delivery.notification_id)
    if not notification.fallback:
        return []
    siblings = list(
        Delivery.objects.filter(notification=notification, recipient_id=delivery.recipient_id)
    )
    if any(d.is_fallback for d in siblings):
        return []  # already fell back once
    if any(Reason.of(d.reason) is Reason.THROTTLED for d in siblings):
        return []  # over the throttle: its fallback must not send either
    # Escalation steps are not requested channels: they neither hold a fallback back nor count.
    if not all(unreachable(d) for d in siblings if d.escalation_step is None):
        return []
    have = {d.channel for d in siblings}
    wanted = [c for c in dict.fromkeys(notification.fallback) if c not in have]
    recipient = Recipient.objects.get(pk=delivery.recipient_id)
    created = _build(
        notification,
        recipient,
        wanted,
        send_at_respected=False,
        suppressed=lambda channel: recipient_is_suppressed(recipient=recipient, channel=channel),
    )
    deliveries_create(created)  # each first event says "fallback: ..." (is_fallback)
    return created


def fallback_for_new(
    *,
    notification: Notification,
    deliveries: Sequence[Delivery],
    suppressed: Callable[[Recipient, str], bool],
    throttled: Collection[int] = (),
) -> list[Delivery]:
    """At creation: for each recipient none of whose requested channels can reach them, the
    fallback deliveries, unsaved (`notification_insert` writes them with the others).
    `suppressed(recipient, channel)` answers from what the caller already read. A recipient
    over the notification's throttle (`throttled`, recipient ids) gets them skipped,
    `throttled`, like its channels."""
    if not notification.fallback:
        return []
    by_recipient: dict[int, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_recipient[d.recipient_id].append(d)
    created: list[Delivery] = []
    for group in by_recipient.values():
        if all(unreachable(d) for d in group):
            have = {d.channel for d in group}
            wanted = [c for c in dict.fromkeys(notification.fallback) if c not in have]
            recipient = group[0].recipient
            created += _build(
                notification,
                recipient,
                wanted,
                send_at_respected=True,
                suppressed=partial(suppressed, recipient),
                throttled=recipient.pk in throttled,
            )
    return created
