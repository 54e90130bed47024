from __future__ import annotations

from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "apps.inbox"
    label = "inbox"

    def ready(self) -> None:
        from apps.inbox import origins  # noqa: F401 - registers the Origin system check
