"""The operator dashboard in the admin (`/admin/dashboard/`): the last day at a glance,
rendered server-side as inline SVG."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import redis
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from apps.core.broker import queue_depths
from apps.deliveries.stats import dead_letters_by_reason, deliveries_hourly
from apps.ops import charts
from apps.ops.collectors import breaker_rows
from notifier.types import Channel


def _dead_letter_admin_url() -> str | None:
    try:
        return reverse("admin:deliveries_deadletter_changelist")
    except NoReverseMatch:
        return None


def _dead_letter_filter(row: dict[str, Any]) -> str:
    """The dead-letter admin's filters for one group, not yet replayed."""
    return urlencode(
        {"channel": row["channel"], "reason": row["reason"], "replayed_at__isempty": "1"}
    )


def dashboard_context(*, hours: int = 24) -> dict[str, Any]:
    """Everything the page shows, read now."""
    stats = deliveries_hourly(hours=hours)
    channel_charts = [
        {
            "channel": channel.value,
            "totals": {name: sum(values) for name, values in stats.outcomes[channel].items()},
            "svg": charts.stacked_bars(
                f"{channel.value}: sent / failed / dead per hour",
                stats.hours,
                stats.outcomes[channel],
            ),
        }
        for channel in Channel
    ]
    latency = charts.lines(
        "accept → sent latency per hour (p50 / p95)",
        stats.hours,
        {"p50": stats.p50, "p95": stats.p95},
        "s",
    )
    try:
        depths: dict[str, int] | None = queue_depths()
        breakers: list[dict[str, Any]] | None = breaker_rows()
    except redis.RedisError:
        depths, breakers = None, None
    dead_url = _dead_letter_admin_url()
    dead = [
        {
            **row,
            "url": f"{dead_url}?{_dead_letter_filter(row)}" if dead_url else None,
        }
        for row in dead_letters_by_reason()
    ]
    return {
        "generated_at": timezone.now(),
        "hours": hours,
        "channel_charts": channel_charts,
        "latency_svg": latency,
        "queue_depths": depths,
        "breakers": breakers,
        "dead_letters": dead,
        "dead_letter_url": dead_url,
    }


@staff_member_required
def dashboard_view(request: HttpRequest) -> HttpResponse:
    """Staff only: anyone else is sent to the admin login."""
    context = {
        **admin.site.each_context(request),
        **dashboard_context(),
        "title": "Operations dashboard",
    }
    return render(request, "admin/ops_dashboard.html", context)
