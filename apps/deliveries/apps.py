from __future__ import annotations

from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "apps.deliveries"
    label = "deliveries"

    def ready(self) -> None:
        from apps.deliveries import checks  # noqa: F401 - registers the system checks
        from apps.deliveries.confirmations import deliveries_read_on_inbox_read
        from apps.deliveries.erasure import recipient_history_erase
        from apps.inbox.signals import messages_read
        from apps.recipients.signals import recipient_erasing

        # The apps below announce; this one acts (they import nothing of it).
        recipient_erasing.connect(recipient_history_erase, dispatch_uid="deliveries.erasure")
        messages_read.connect(deliveries_read_on_inbox_read, dispatch_uid="deliveries.read")
