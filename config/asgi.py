"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
django_asgi_app = get_asgi_application()

from apps.core.production import refuse_unsafe_start  # noqa: E402

# uvicorn runs no system checks: refuse here to serve with unsafe production settings.
refuse_unsafe_start()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.inbox.origins import websocket_origin_guard  # noqa: E402
from apps.inbox.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # WEBSOCKET_ALLOWED_ORIGINS (or ALLOWED_HOSTS); refuses to start with `*` outside DEBUG.
        "websocket": websocket_origin_guard(URLRouter(websocket_urlpatterns)),
    }
)

# Everything loaded so far lives as long as the process: move it out of the cyclic garbage
# collector's sight, so that full collections (which otherwise walk every Django and DRF
# object on each pass) stay short and do not show up as latency spikes.
gc.freeze()
