from __future__ import annotations

from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "apps.deliveries"
    label = "deliveries"

    def ready(self) -> None:
        from apps.deliveries import checks  # noqa: F401 - registers the system checks
        from apps.deliveries.confirmations import (
            deliveries_read_on_inbox_read,
            deliveries_seen_on_inbox_seen,
        )
        from apps.deliveries.erasure import recipient_history_erase
        from apps.inbox.signals import messages_read, messages_seen
        from apps.recipients.signals import recipient_erasing

        # The apps below announce; this one acts (they import nothing of it).
        recipient_erasing.connect(recipient_history_erase, dispatch_uid="deliveries.erasure")
        messages_read.connect(deliveries_read_on_inbox_read, dispatch_uid="deliveries.read")
        messages_seen.connect(deliveries_seen_on_inbox_seen, dispatch_uid="deliveries.seen")
