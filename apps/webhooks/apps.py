from __future__ import annotations

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from apps.deliveries.signals import deliveries_changed, notification_cancelled
        from apps.recipients.signals import recipient_event_recorded
        from apps.webhooks import checks  # noqa: F401 - registers the system check
        from apps.webhooks.outbox import (
            outbox_on_deliveries_changed,
            outbox_on_notification_cancelled,
            outbox_on_recipient_event,
        )
        from apps.webhooks.presence import nobody_known

        # The apps below announce inside their transactions; this one writes its outbox there,
        # each receiver in a savepoint (apps.core.signals), skipped when no endpoint exists.
        deliveries_changed.connect(
            outbox_on_deliveries_changed, dispatch_uid="webhooks.deliveries", idle=nobody_known
        )
        notification_cancelled.connect(
            outbox_on_notification_cancelled, dispatch_uid="webhooks.cancelled", idle=nobody_known
        )
        recipient_event_recorded.connect(
            outbox_on_recipient_event, dispatch_uid="webhooks.recipient", idle=nobody_known
        )
