"""The Celery app. Configuration lives in Django settings under the CELERY_ prefix."""

from __future__ import annotations

import gc
import logging
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("notifier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def refuse_unsafe_settings(**_: object) -> None:
    """Celery runs Django's system checks at start but ignores what they find: refuse here to
    work with unsafe production settings (a missing or published secret key). SystemExit,
    because Celery's signal dispatch logs and swallows any Exception a receiver raises."""
    from django.core.exceptions import ImproperlyConfigured

    from apps.core.production import refuse_unsafe_start

    try:
        refuse_unsafe_start()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"celery: {exc}") from exc


@signals.beat_init.connect
def warn_on_the_rewriting_scheduler(sender: object = None, **_: object) -> None:
    """django-celery-beat's own DatabaseScheduler rewrites the built-in tasks from the settings
    on every start, undoing operators' edits: say so where beat's output is read."""
    from django_celery_beat.schedulers import DatabaseScheduler

    scheduler = getattr(sender, "scheduler", None)
    if type(scheduler) is DatabaseScheduler:
        logging.getLogger(__name__).warning(
            "beat runs django_celery_beat's DatabaseScheduler, which rewrites the built-in "
            "periodic tasks on every start (admin edits are lost): run beat with "
            "--scheduler apps.ops.beat:DatabaseScheduler"
        )


@signals.worker_ready.connect
@signals.worker_process_init.connect
def freeze_startup_objects(**_: object) -> None:
    """Keep what start-up loaded (Django, DRF, the SDKs) out of the cyclic GC's full passes,
    as config/asgi.py does for the web: shorter collections, fewer latency spikes."""
    gc.freeze()
