from __future__ import annotations

from django.apps import AppConfig


class RecipientsConfig(AppConfig):
    name = "apps.recipients"
    label = "recipients"

    def ready(self) -> None:
        from apps.recipients import schema  # noqa: F401 - registers the OpenAPI auth extension
