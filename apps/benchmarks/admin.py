from __future__ import annotations

from django.contrib import admin

from apps.benchmarks.models import BenchRow


@admin.register(BenchRow)
class BenchRowAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows written by the bench-only ceiling endpoint (read only)."""

    list_display = ["id", "created_at"]
    search_fields = ["id"]
    list_filter = ["created_at"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
