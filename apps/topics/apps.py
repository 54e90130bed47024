from __future__ import annotations

from django.apps import AppConfig


class TopicsConfig(AppConfig):
    name = "apps.topics"
    label = "topics"

    def ready(self) -> None:
        from apps.recipients.signals import recipient_describing, recipient_erasing
        from apps.topics.selectors import recipient_topics_described
        from apps.topics.services import subscriptions_erase

        # The recipients app announces; this one answers (it imports nothing of this app).
        recipient_describing.connect(recipient_topics_described, dispatch_uid="topics.describe")
        recipient_erasing.connect(subscriptions_erase, dispatch_uid="topics.erasure")
