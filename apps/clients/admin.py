"""Admin for API clients and keys. Keys are created with `manage.py create_api_key`
(the raw key is shown once), so the admin only lists and revokes them."""

from __future__ import annotations

from typing import Any

# Admin classes are generic only in django-stubs (not subscriptable at runtime): hence the
# `type: ignore[type-arg]` on each class below.
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.clients.models import ApiClient, ApiKey
from apps.clients.services import api_keys_revoke

KEY_FIELDS = ("prefix", "created_at", "last_used_at", "revoked_at")


class ApiKeyInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ApiKey
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "is_ops", "created_at")
    list_filter = ("is_ops", "created_at")
    search_fields = ("name",)
    readonly_fields = ("created_at",)
    inlines = [ApiKeyInline]


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Revoked"), ("no", "Live")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("prefix", "client", "created_at", "last_used_at", "revoked_at")
    list_filter = (RevokedFilter, "client", "created_at")
    search_fields = ("prefix", "client__name")
    readonly_fields = ("client", "prefix", "key_hash", *KEY_FIELDS[1:])
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
