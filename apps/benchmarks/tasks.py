"""The queue ceiling: a task that does nothing, drained by the same worker configuration."""

from __future__ import annotations

from celery import shared_task

NOOP_TASK = "benchmarks.noop"


@shared_task(name=NOOP_TASK, ignore_result=True, soft_time_limit=30)
def noop(delivery_ids: list[str] | str) -> None:
    """Do nothing (takes the same argument as `deliveries.send`)."""
