"""The analytics app's admin."""

from __future__ import annotations

from django.contrib import admin

from apps.analytics import admin_experiments

admin_experiments.register(admin.site)
