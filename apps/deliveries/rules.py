"""The facts routing rules need, gathered for one delivery: applied at creation and again just
before sending (preferences, suppressions, quiet hours, the daily cap)."""

from __future__ import annotations

import datetime as dt

from apps.deliveries.selectors import recipient_sent_today
from apps.recipients.models import Recipient
from apps.recipients.selectors import (
    recipient_has_address,
    recipient_is_suppressed,
    recipient_rules,
)
from notifier.routing import Decision, decide
from notifier.types import Priority


def delivery_decide(
    *,
    recipient: Recipient,
    channel: str,
    category: str,
    priority: str,
    now: dt.datetime,
    suppressed: bool | None = None,
    throttled: bool = False,
) -> Decision:
    """Send, skip or defer one delivery to `recipient` on `channel` at `now`.

    `suppressed`, when the caller already knows it (bulk creation looks them up in one query).
    """
    rules = recipient_rules(recipient=recipient)
    sent_today = 0
    # The count is a query: only when a cap can apply.
    if rules.daily_limit is not None and priority != Priority.CRITICAL:
        sent_today = recipient_sent_today(
            recipient_id=recipient.pk, timezone=rules.timezone, now=now
        )
    if suppressed is None:
        suppressed = recipient_is_suppressed(recipient=recipient, channel=channel)
    return decide(
        rules=rules,
        channel=channel,
        category=category,
        priority=priority,
        has_address=recipient_has_address(recipient=recipient, channel=channel),
        suppressed=suppressed,
        throttled=throttled,
        sent_today=sent_today,
        now=now,
    )
