"""Admin for notifications, deliveries and dead letters: read-only history, replay of dead
letters (one or many) through the same service the API uses."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from apps.deliveries.dead_letters import dead_letters_replay
from apps.deliveries.models import (
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryEvent,
    Digest,
    FanOut,
    Notification,
)
from apps.deliveries.selectors import DETAIL_DELIVERIES_MAX, notifications_status_counts


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _delivery_total(notification: Notification) -> int:
    return Delivery.objects.filter(notification=notification).count()


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = readonly_fields = (
        "id",
        "recipient",
        "channel",
        "status",
        "reason",
        "attempts",
        "is_fallback",
        "escalation_step",
    )
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("recipient")


class EventInline(ReadOnlyInline):
    model = DeliveryEvent
    fields = readonly_fields = ("at", "status", "detail")


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = readonly_fields = (
        "number",
        "provider",
        "started_at",
        "finished_at",
        "outcome",
        "response_code",
        "latency_ms",
        "error",
    )


class FanOutInline(ReadOnlyInline):
    """A topic notification's fan-out progress."""

    model = FanOut
    fields = readonly_fields = (
        "topic_key",
        "exclude",
        "expected",
        "created",
        "after_recipient",
        "finished_at",
        "updated_at",
    )


class DeadLetterInline(ReadOnlyInline):
    model = DeadLetter
    fields = readonly_fields = ("created_at", "reason", "attempts", "replayed_at", "replayed_by")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "client", "template", "priority", "category", "created_at"]
    list_filter = ["priority", "category", "client", "created_at"]
    search_fields = ["id", "idempotency_key", "template__key", "client__name", "category"]
    readonly_fields = [*(f.name for f in Notification._meta.fields), "deliveries_summary"]
    inlines = [FanOutInline, DeliveryInline]
    date_hierarchy = "created_at"

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        # A topic's notification can have 100,000 deliveries: beyond the API's cap, the page
        # shows their counts and links to the filtered delivery list instead of an inline.
        if obj is not None and _delivery_total(obj) > DETAIL_DELIVERIES_MAX:
            return [FanOutInline]
        return list(self.inlines)

    @admin.display(description="Deliveries")
    def deliveries_summary(self, obj: Notification) -> str:
        counts = notifications_status_counts(notification_ids=[str(obj.id)]).get(str(obj.id), {})
        url = reverse("admin:deliveries_delivery_changelist")
        by_status = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
        return format_html(
            '{} ({}) <a href="{}?notification__id__exact={}">list them</a>',
            sum(counts.values()),
            by_status or "none",
            url,
            obj.id,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "id",
        "recipient",
        "channel",
        "priority",
        "status",
        "attempts",
        "reason",
        "is_fallback",
        "escalation_step",
        "updated_at",
    ]
    list_filter = ["status", "channel", "priority", "is_fallback", "escalation_step", "provider"]
    search_fields = [
        "id",
        "notification__id",
        "digest__id",
        "recipient__external_id",
        "provider_message_id",
        "reason",
    ]
    list_select_related = ["recipient"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [EventInline, AttemptInline, DeadLetterInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "id",
        "delivery",
        "channel",
        "reason",
        "attempts",
        "created_at",
        "replayed_at",
        "replayed_by",
    ]
    list_filter = ["channel", "reason", ("replayed_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["reason", "last_error", "delivery__id", "delivery__recipient__external_id"]
    list_select_related = ["delivery"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["replay"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Replay the selected dead letters", permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        user = getattr(request.user, "get_username", lambda: "")()
        ids = list(queryset.values_list("pk", flat=True))
        replayed = dead_letters_replay(replayed_by=f"admin:{user}", ids=ids)
        skipped = len(ids) - len(replayed)
        self.message_user(request, f"Replayed {len(replayed)} dead letter(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} not replayed (already replayed, or the delivery is no longer dead).",
                messages.WARNING,
            )


# A window may hold thousands of items: its page lists the newest this many.
DIGEST_ITEMS_SHOWN = 100


class DigestItemInline(DeliveryInline):
    fk_name = "digest"
    verbose_name = "item"
    verbose_name_plural = f"items (the newest {DIGEST_ITEMS_SHOWN} joined deliveries)"


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Digest windows: open ones with their close time, closed ones with their outcome and the
    delivery they were sent as. Read-only: the windows move by the sweep (and a cancel or an
    erasure), never by hand."""

    list_display = [
        "id",
        "recipient",
        "template",
        "channel",
        "key",
        "closes_at",
        "closed_at",
        "outcome",
        "item_count",
    ]
    list_filter = [("closed_at", admin.EmptyFieldListFilter), "outcome", "channel", "cadence"]
    search_fields = ["id", "key", "recipient__external_id", "template__key"]
    list_select_related = ["recipient", "template"]
    readonly_fields = [f.name for f in Digest._meta.fields]
    inlines = [DigestItemInline]
    date_hierarchy = "opened_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting an open window would leave its items `digested` with nowhere to go.
        if obj is not None and obj.closed_at is None:
            return False
        return super().has_delete_permission(request, obj)

    def get_formset_kwargs(
        self, request: HttpRequest, obj: Any, inline: Any, prefix: str
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, DigestItemInline) and obj is not None:
            newest = (
                Delivery.objects.filter(digest=obj)
                .order_by("-created_at", "-id")
                .values("pk")[:DIGEST_ITEMS_SHOWN]
            )
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=Subquery(newest))
        return kwargs
