from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the service: the ops dashboard, health probes, `/metrics` with its scrape-time
    collectors, the management commands and the demo (seed_demo, the bell page). The top of the
    apps: it may import any of them, and none imports it."""

    name = "apps.ops"
    label = "ops"
