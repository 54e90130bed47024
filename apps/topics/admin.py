from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from apps.topics.models import Subscription, Topic


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # No subscriptions inline: a topic may have 100,000 of them (see Subscriptions, by topic).
    list_display = ["key", "name", "client", "subscribers", "created_at"]
    list_filter = ["client"]
    search_fields = ["key", "name"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        topics: QuerySet[Topic] = super().get_queryset(request)
        return topics.annotate(subscriber_count=Count("subscriptions"))

    @admin.display(description="subscribers", ordering="subscriber_count")
    def subscribers(self, topic: Topic) -> int:
        return int(getattr(topic, "subscriber_count", 0))


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["topic", "recipient", "created_at"]
    list_select_related = ["topic", "recipient"]
    list_filter = ["topic__client"]
    search_fields = ["topic__key", "recipient__external_id"]
    raw_id_fields = ["topic", "recipient"]
    readonly_fields = ["created_at"]
