"""The analytics app's admin: the rollup rows, read-only (the aggregator writes them; what the
analytics page sums), and the A/B tests on the template's page (admin_experiments)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.analytics import admin_experiments
from apps.analytics.models import Rollup

admin_experiments.register(admin.site)


@admin.register(Rollup)
class RollupAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "hour",
        "client",
        "template",
        "channel",
        "variant",
        "provider",
        "accepted",
        "sent",
        "delivered",
        "opened",
        "failed",
        "dead",
        "cost_micros",
    )
    list_filter = ("channel", "provider", "client", "hour")
    search_fields = ("template__key", "variant")
    list_select_related = ("client", "template")
    date_hierarchy = "hour"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
