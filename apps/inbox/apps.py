from __future__ import annotations

from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "apps.inbox"
    label = "inbox"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from apps.inbox import origins  # registers the Origin system check

        check_request_enabled.connect(origins.inbox_cors_allowed, dispatch_uid="inbox-cors")
