"""The fold's beat entry and its queue: every ANALYTICS_FOLD_INTERVAL on `maintenance`, its
message expiring after one period (a late run is superseded, not piled up)."""

from __future__ import annotations

from django.conf import settings

from config.celery import app
from notifier.queues import MAINTENANCE_QUEUE


def test_beat_runs_the_fold_on_the_maintenance_queue() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["analytics-fold"]

    assert entry["task"] == "analytics.fold"
    assert entry["schedule"] == settings.ANALYTICS_FOLD_INTERVAL == 5.0
    assert entry["options"] == {"expires": 5, "expire_seconds": 5}
    route = app.amqp.router.route({}, "analytics.fold")
    assert route["queue"].name == MAINTENANCE_QUEUE
