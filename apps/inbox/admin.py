"""Admin for in-app inbox messages: read-only (they are what the recipient was shown)."""

from __future__ import annotations

from typing import Any

# Admin classes are generic only in django-stubs (not subscriptable at runtime): hence the
# `type: ignore[type-arg]` on each class below.
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.inbox.models import InboxMessage


class ReadFilter(admin.SimpleListFilter):
    title = "read"
    parameter_name = "read"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Read"), ("no", "Unread")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(read_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(read_at__isnull=True)
        return queryset


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "recipient", "title", "created_at", "read_at")
    list_filter = (ReadFilter, "recipient__client", "created_at")
    search_fields = ("title", "body", "recipient__external_id")
    list_select_related = ("recipient",)
    readonly_fields = ("recipient", "delivery", "title", "body", "data", "created_at", "read_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
