"""Queue names: one Redis queue per channel and priority (`email.critical` ... `inapp.low`)."""

from __future__ import annotations

from notifier.types import PRIORITY_ORDER, Channel, Priority

MAINTENANCE_QUEUE = "maintenance"


def queue_name(channel: Channel | str, priority: Priority | str) -> str:
    return f"{Channel(channel).value}.{Priority(priority).value}"


def channel_queues(channel: Channel | str) -> list[str]:
    """The queues of one channel, highest priority first (the order a worker consumes them)."""
    return [queue_name(channel, p) for p in PRIORITY_ORDER]


# Priority first across channels: the order one worker serving every queue (`make run`) uses.
ALL_QUEUES: list[str] = [queue_name(c, p) for p in PRIORITY_ORDER for c in Channel] + [
    MAINTENANCE_QUEUE
]
