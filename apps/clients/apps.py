from __future__ import annotations

from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "apps.clients"
    label = "clients"

    def ready(self) -> None:
        from apps.clients import schema  # noqa: F401 - registers the OpenAPI auth extension
