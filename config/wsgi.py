from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
application = get_wsgi_application()

from apps.core.production import refuse_unsafe_start  # noqa: E402

# WSGI servers run no system checks: refuse here to serve with unsafe production settings.
refuse_unsafe_start()
