"""The delivery lifecycle: the one owner of every status change of a delivery.

- table.py: the allowed transitions (from-statuses -> to-status) and the guarded UPDATE.
- create.py: a new delivery's first status, from the routing rules, with its event; a new
  notification with its deliveries and their events in one statement (or, for a notification
  already saved, its new deliveries and their events).
- moves.py: every later change, with its event, metrics and what follows (publish, dead
  letter, fallback).
- fallback.py: the notification's fallback channels once every requested one has failed.
- escalation.py: which escalation steps an earlier delivery made needless (moves.py stands them
  down: at release, or at once on a read or a provider report).
- digests.py: an item leaving its open digest (cancel), a closed digest's one delivery, a
  recipient's open digests closed empty (erasure), and a digest that failed to close.

Nothing outside this package writes `Delivery.status` or a `DeliveryEvent`
(tests/test_architecture.py).
"""

from __future__ import annotations

from apps.deliveries.lifecycle.create import (
    DIGESTIBLE,
    deliveries_create,
    deliveries_insert,
    delivery_best_time,
    delivery_digested,
    delivery_new,
    enqueue_on_commit,
    notification_insert,
)
from apps.deliveries.lifecycle.digests import (
    digest_deliver,
    digest_items_leave,
    digest_window_fail,
    digest_windows_close_empty,
)
from apps.deliveries.lifecycle.fallback import fallback_after_failure, fallback_for_new
from apps.deliveries.lifecycle.moves import (
    deliveries_cancel,
    deliveries_claim,
    deliveries_hand_back,
    deliveries_postpone,
    deliveries_read,
    deliveries_release,
    deliveries_replay,
    deliveries_requeue,
    deliveries_seen,
    deliveries_sent,
    delivery_dead,
    delivery_hold,
    delivery_report,
    delivery_retrying,
)
from apps.deliveries.lifecycle.table import TRANSITIONS, Transition

__all__ = [
    "DIGESTIBLE",
    "TRANSITIONS",
    "Transition",
    "deliveries_cancel",
    "deliveries_claim",
    "deliveries_create",
    "deliveries_hand_back",
    "deliveries_insert",
    "deliveries_postpone",
    "deliveries_read",
    "deliveries_release",
    "deliveries_replay",
    "deliveries_requeue",
    "deliveries_seen",
    "deliveries_sent",
    "delivery_best_time",
    "delivery_dead",
    "delivery_digested",
    "delivery_hold",
    "delivery_new",
    "delivery_report",
    "delivery_retrying",
    "digest_deliver",
    "digest_items_leave",
    "digest_window_fail",
    "digest_windows_close_empty",
    "enqueue_on_commit",
    "fallback_after_failure",
    "fallback_for_new",
    "notification_insert",
]
