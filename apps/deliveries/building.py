"""A notification's deliveries for some of its recipients, with its workflows applied: the one
sequence both creation paths run (services._notification_create for listed recipients, in the
request's transaction; fanout._create_deliveries for one chunk of a topic's subscribers, in the
chunk's transaction).

1. the throttle: one slot per recipient (throttles.py); those over the limit get their
   deliveries `skipped`, reason `throttled`;
2. a delivery per recipient and requested channel, in the status the routing rules give it;
3. the digest: the new sendable ones join their open window (`digested`);
4. fallback for the recipients none of whose channels can reach them;
5. the escalation steps, `scheduled` per recipient.

The caller inserts what `deliveries_build` returns, then calls `deliveries_counted` (metrics
only once the insert went through). The slots come from the caller's `throttle_slots()` block,
which wraps its transaction: a slot taken by a transaction that rolls back is given back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from apps.core import metrics
from apps.deliveries.digests import DigestJoins, deliveries_digest, digest_joins_counted
from apps.deliveries.lifecycle import delivery_new, fallback_for_new
from apps.deliveries.models import Delivery, Notification
from apps.deliveries.throttles import Slots, recipients_throttled
from apps.deliveries.workflows import escalation_deliveries, workflows_counted
from apps.recipients.models import Recipient
from notifier.digests import DigestSpec, digest_stored
from notifier.workflows import (
    EscalationStep,
    Throttle,
    escalation_channels,
    escalation_stored,
    throttle_stored,
)


@dataclass(frozen=True)
class Workflows:
    """What applies to a notification's deliveries beyond the routing rules: its throttle (None:
    none, `critical` included), the digest declaration in force (None: none; its variants render
    `items` and `count` all the same), and its escalation steps. `digest_off`: the request said
    `"digest": false`; `scheduled`: its `send_at` was later than its acceptance."""

    throttle: Throttle | None = None
    digest: DigestSpec | None = None
    digest_off: bool = False
    escalation: Sequence[EscalationStep] = ()
    scheduled: bool = False

    @classmethod
    def stored(cls, notification: Notification) -> Workflows:
        """As saved on the notification when it was accepted (what a topic's fan-out applies:
        the template's throttle and digest as they were then, or the request's). Checked then,
        so read back as they are: a rule tightened since (a lower THROTTLE_MAX_LIMIT) must not
        fail every chunk, and the resume sweep requeue the fan-out, for ever."""
        send_at, accepted = notification.send_at, notification.created_at
        return cls(
            throttle=throttle_stored(notification.throttle) if notification.throttle else None,
            digest=digest_stored(notification.digest),
            escalation=escalation_stored(notification.escalation or []),
            scheduled=bool(send_at and accepted and send_at > accepted),
        )

    def escalated_channels(self) -> list[str]:
        """The channels the escalation steps send on (their suppressions are read with the
        recipients', their variants rendered before the 202)."""
        return escalation_channels(self.escalation)

    def digest_joining(self) -> DigestSpec | None:
        """The declaration under which the deliveries join digest windows, decided once for the
        whole notification (listed recipients, or every chunk of a fan-out): none after
        `"digest": false`; none with escalation steps (a digested item never reaches `read`, so
        its steps would always go out); none when scheduled with `send_at` (its deliveries wait
        for their time, then go out on their own)."""
        if self.digest_off or self.escalation or self.scheduled:
            return None
        return self.digest

    def digest_json(self) -> dict[str, object] | None:
        """What the notification stores as its `digest`: the declaration that joins windows."""
        joining = self.digest_joining()
        return None if joining is None else joining.as_json()


@dataclass(frozen=True)
class Built:
    deliveries: list[Delivery]
    joins: DigestJoins = field(default_factory=DigestJoins)


def deliveries_build(
    *,
    notification: Notification,
    recipients: Sequence[Recipient],
    workflows: Workflows,
    suppressed: Callable[[Recipient, str], bool],
    slots: Slots,
    now: dt.datetime,
    lenient_digest_keys: bool = False,
) -> Built:
    """The deliveries (unsaved) of `recipients` on the notification's channels, then their
    fallback and escalation deliveries. `suppressed(recipient, channel)` answers from what the
    caller already read (fallback and escalation channels included). With
    `lenient_digest_keys` (a fan-out, which has no caller to answer 400), a recipient whose
    digest key does not render is sent on its own instead of failing the whole chunk."""
    throttled = recipients_throttled(
        slots=slots,
        throttle=workflows.throttle,
        notification=notification,
        recipient_ids=[r.pk for r in recipients],
    )
    deliveries = [
        delivery_new(
            notification,
            recipient,
            channel,
            send_at=notification.send_at,
            now=now,
            suppressed=suppressed(recipient, channel),
            throttled=recipient.pk in throttled,
        )
        for recipient in recipients
        for channel in notification.channels
    ]
    joins = deliveries_digest(
        notification=notification,
        deliveries=deliveries,
        declared=workflows.digest_joining(),
        now=now,
        lenient_keys=lenient_digest_keys,
    )
    deliveries += fallback_for_new(
        notification=notification,
        deliveries=deliveries,
        suppressed=suppressed,
        throttled=throttled,
    )
    deliveries += escalation_deliveries(
        notification=notification,
        steps=workflows.escalation,
        recipients=recipients,
        suppressed=suppressed,
        throttled=throttled,
        now=now,
    )
    return Built(deliveries=deliveries, joins=joins)


def deliveries_counted(*, notification: Notification, built: Built) -> None:
    """The metrics of what `deliveries_build` made: after the insert (it can fail)."""
    metrics.notification_accepted(notification=notification, deliveries=built.deliveries)
    workflows_counted(built.deliveries)
    digest_joins_counted(built.joins)
