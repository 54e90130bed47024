"""Celery tasks of the analytics rollup: thin adapters over the services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.analytics.services import rollups_fold_pending


@shared_task(
    name="analytics.fold",
    ignore_result=True,
    soft_time_limit=settings.ANALYTICS_FOLD_BUDGET_SECONDS + 60,
    time_limit=settings.ANALYTICS_FOLD_BUDGET_SECONDS + 90,
)
def fold() -> int:
    """Fold the timeline's new rows into the rollup (beat, every ANALYTICS_FOLD_INTERVAL),
    until none are left or the time budget passes; nothing while ANALYTICS_ENABLED is off.
    Returns the rows folded."""
    if not settings.ANALYTICS_ENABLED:
        return 0
    return rollups_fold_pending().rows
