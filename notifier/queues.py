"""Queue names: one Redis queue per channel and priority (`email.critical` ... `inapp.low`),
then the two queues of periodic work: `timers` (short sweeps that must run on time: due
scheduled and deferred deliveries, due digest windows) and `maintenance` (the rest, some long:
the reconciler, fan-outs, the retention purge). Each has its own worker, so that a long
maintenance job never holds up a release or a digest's close. Outbound webhooks have a queue
of their own too, `webhooks`, and their own worker: a slow receiver never holds up a send."""

from __future__ import annotations

from notifier.types import PRIORITY_ORDER, Channel, Priority

MAINTENANCE_QUEUE = "maintenance"
TIMERS_QUEUE = "timers"
WEBHOOKS_QUEUE = "webhooks"


def queue_name(channel: Channel | str, priority: Priority | str) -> str:
    return f"{Channel(channel).value}.{Priority(priority).value}"


def channel_queues(channel: Channel | str) -> list[str]:
    """The queues of one channel, highest priority first (the order a worker consumes them)."""
    return [queue_name(channel, p) for p in PRIORITY_ORDER]


# Priority first across channels: the order one worker serving every queue (`make run`) uses.
DELIVERY_QUEUES: list[str] = [queue_name(c, p) for p in PRIORITY_ORDER for c in Channel]
ALL_QUEUES: list[str] = [*DELIVERY_QUEUES, TIMERS_QUEUE, MAINTENANCE_QUEUE, WEBHOOKS_QUEUE]
