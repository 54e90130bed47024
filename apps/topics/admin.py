from __future__ import annotations

from typing import Any

from django import forms
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


class SubscriptionForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Subscription
        fields = ["topic", "recipient"]

    def clean(self) -> dict[str, Any]:
        """A topic is followed only by its own client's recipients (the API's rule too)."""
        data: dict[str, Any] = super().clean() or {}
        topic, recipient = data.get("topic"), data.get("recipient")
        if topic is not None and recipient is not None and topic.client_id != recipient.client_id:
            raise forms.ValidationError("The recipient belongs to another client than the topic.")
        return data


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = SubscriptionForm
    list_display = ["topic", "recipient", "created_at"]
    list_select_related = ["topic", "recipient"]
    list_filter = ["topic__client"]
    search_fields = ["topic__key", "recipient__external_id"]
    raw_id_fields = ["topic", "recipient"]
    readonly_fields = ["created_at"]
