"""Beat's scheduler: django-celery-beat's, except that the built-in periodic tasks are created
once and then left to the operators.

django-celery-beat writes every entry of CELERY_BEAT_SCHEDULE over its database row on each
start (`update_or_create`), so an interval changed or a task disabled in the admin came back
after a restart. Here an entry whose row exists is not touched: the admin is the source of
truth once a row exists; the setting only seeds it (delete the row to re-seed it).
"""

from __future__ import annotations

from typing import Any

from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler as BeatDatabaseScheduler


class DatabaseScheduler(BeatDatabaseScheduler):  # type: ignore[misc]  # untyped library
    """`celery beat --scheduler apps.ops.beat:DatabaseScheduler` (CELERY_BEAT_SCHEDULER)."""

    def update_from_dict(self, mapping: dict[str, Any]) -> None:
        existing = set(
            PeriodicTask.objects.filter(name__in=list(mapping)).values_list("name", flat=True)
        )
        super().update_from_dict({n: e for n, e in mapping.items() if n not in existing})
