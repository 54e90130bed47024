"""The delivery lifecycle: the one owner of every status change of a delivery.

- table.py: the allowed transitions (from-statuses -> to-status) and the guarded UPDATE.
- create.py: a new delivery's first status, from the routing rules, with its event; a new
  notification with its deliveries and their events in one statement.
- moves.py: every later change, with its event, metrics and what follows (publish, dead
  letter, fallback).
- fallback.py: the notification's fallback channels once every requested one has failed.

Nothing outside this package writes `Delivery.status` or a `DeliveryEvent`
(tests/test_architecture.py).
"""

from __future__ import annotations

from apps.deliveries.lifecycle.create import (
    deliveries_create,
    delivery_new,
    enqueue_on_commit,
    notification_insert,
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
    deliveries_sent,
    delivery_dead,
    delivery_hold,
    delivery_report,
    delivery_retrying,
)
from apps.deliveries.lifecycle.table import TRANSITIONS, Transition

__all__ = [
    "TRANSITIONS",
    "Transition",
    "deliveries_cancel",
    "deliveries_claim",
    "deliveries_create",
    "deliveries_hand_back",
    "deliveries_postpone",
    "deliveries_read",
    "deliveries_release",
    "deliveries_replay",
    "deliveries_requeue",
    "deliveries_sent",
    "delivery_dead",
    "delivery_hold",
    "delivery_new",
    "delivery_report",
    "delivery_retrying",
    "enqueue_on_commit",
    "fallback_after_failure",
    "fallback_for_new",
    "notification_insert",
]
