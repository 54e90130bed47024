"""The Celery app. Configuration lives in Django settings under the CELERY_ prefix."""

from __future__ import annotations

import gc
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("notifier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect
@signals.worker_process_init.connect
def freeze_startup_objects(**_: object) -> None:
    """Keep what start-up loaded (Django, DRF, the SDKs) out of the cyclic GC's full passes,
    as config/asgi.py does for the web: shorter collections, fewer latency spikes."""
    gc.freeze()
