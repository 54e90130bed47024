from __future__ import annotations

from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "apps.deliveries"
    label = "deliveries"

    def ready(self) -> None:
        from apps.deliveries import checks  # noqa: F401 - registers the system checks
