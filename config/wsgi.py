"""WSGI entry point: the REST API, admin and probes under gunicorn (config/gunicorn.py)."""

from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
django_application = get_wsgi_application()

from apps.core.admission import admission_from_settings  # noqa: E402
from apps.core.production import refuse_unsafe_start  # noqa: E402

# WSGI servers run no system checks: refuse here to serve with unsafe production settings.
refuse_unsafe_start()

# Past its capacity a process answers 503 + Retry-After at once instead of queueing
# (ADMISSION_* settings).
application = admission_from_settings(django_application)

# As in config/asgi.py: what is loaded now lives as long as the process; keep it out of the
# cyclic collector's full passes (latency spikes).
gc.freeze()
