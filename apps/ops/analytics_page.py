"""The analytics page in the admin (`/admin/analytics/`, staff with the permission
`analytics.view_rollup`): the rollups of a date range, overall or for one template
(`?template=<id>`, linked from the template's admin page), optionally one channel: charts per
day (server-side SVG) and tables per day and per channel, all from one query per (day, channel).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.analytics.experiments import ExperimentKind, experiment_summary
from apps.analytics.selectors import Group, analytics_day_channel, currency, groups_merged
from apps.ops import charts
from apps.templates.models import Template
from notifier.types import Channel

CHANNELS = [c.value for c in Channel]
DEFAULT_DAYS = 30
MAX_DAYS = 400


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def default_filters() -> dict[str, Any]:
    """The last 30 days (today included), every channel, every template."""
    end = _today()
    return {"start": end - dt.timedelta(days=DEFAULT_DAYS - 1), "end": end}


class AnalyticsFilterForm(forms.Form):
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label="To (inclusive)",
        required=False,
        widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d"),
    )
    channel = forms.ChoiceField(
        choices=[("", "all channels"), *[(c, c) for c in CHANNELS]], required=False
    )
    template = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        end: dt.date = data.get("end") or _today()
        try:
            start: dt.date = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        except OverflowError as exc:
            raise forms.ValidationError("`To` is too early.") from exc
        if start > end:
            raise forms.ValidationError("`From` must not be after `To`.")
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"At most {MAX_DAYS} days at once.")
        if end >= dt.date.max:
            raise forms.ValidationError("`To` must be before 9999-12-31.")
        return {**data, "start": start, "end": end}


def _days(start: dt.date, end: dt.date) -> list[dt.datetime]:
    return [
        dt.datetime.combine(start + dt.timedelta(days=i), dt.time(), tzinfo=dt.UTC)
        for i in range((end - start).days + 1)
    ]


def _per_day(rows: list[Group], days: list[dt.datetime]) -> list[Group | None]:
    found = {row.key: row for row in rows}
    return [found.get(day.date().isoformat()) for day in days]


def _charts(
    days: list[dt.datetime], per_day: list[Group | None], cost_by_channel: dict[str, list[float]]
) -> list[Any]:
    def counts(name: str) -> list[float | None]:
        return [g.counts[name] if g else None for g in per_day]

    def rate(name: str) -> list[float | None]:
        values = [g.rates()[name] if g else None for g in per_day]
        return [None if v is None else v * 100 for v in values]

    def latency(q: str) -> list[float | None]:
        values = [g.latency()["accept_to_sent"][q] if g else None for g in per_day]
        return [None if v is None else v / 1000 for v in values]

    axis = charts.DAYS
    return [
        charts.lines(
            "sent / delivered / opened per day",
            days,
            {n: counts(n) for n in ("sent", "delivered", "opened")},
            "",
            axis=axis,
        ),
        charts.lines(
            "delivery / open / click rate per day",
            days,
            {n: rate(n) for n in ("delivery", "open", "click")},
            "%",
            axis=axis,
        ),
        charts.stacked_bars(
            f"cost per channel per day ({currency()})", days, cost_by_channel, axis=axis
        ),
        charts.lines(
            "accept → sent latency per day (p50 / p95)",
            days,
            {"p50": latency("p50"), "p95": latency("p95")},
            "s",
            axis=axis,
        ),
    ]


def analytics_page_context(
    *, start: dt.date, end: dt.date, channel: str | None, template: Template | None
) -> dict[str, Any]:
    """Everything the page shows for the days start..end (inclusive, UTC)."""
    scope: dict[str, Any] = {
        "client": template.client if template else None,
        "start": dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
        "end": dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
        "template_key": template.key if template else None,
    }
    days = _days(start, end)
    cells = analytics_day_channel(**scope, channel=channel)
    experiments = (
        experiment_summary(
            client=template.client,
            template=template,
            start=scope["start"],
            end=scope["end"],
            channel=channel,
        )
        if template
        else []
    )
    by_day = groups_merged(cells, by=0)
    by_channel = groups_merged(cells, by=1)
    totals = Group(key="total")
    for group in by_day:
        totals.add(group)
    cost_by_channel = {}
    for name in [channel] if channel else CHANNELS:
        one = [cells.get((day.date().isoformat(), name)) for day in days]
        cost_by_channel[name] = [g.cost_micros / 1_000_000 if g else 0.0 for g in one]
    return {
        "start": start,
        "end": end,
        "channel": channel,
        "template": template,
        "currency": currency(),
        "charts": _charts(days, _per_day(by_day, days), cost_by_channel),
        "cost_by_channel": cost_by_channel,
        "day_rows": [row.as_dict() for row in by_day],
        "channel_rows": [row.as_dict() for row in by_channel],
        "totals": totals.as_dict(),
        # The template's A/B tests over the same days (none for the overall page), and whether
        # one is a copy test (a send-time test has no winner to promote).
        "experiments": experiments,
        "experiments_promotable": any(test["kind"] == ExperimentKind.COPY for test in experiments),
    }


# Every client's numbers: staff alone is not enough (a superuser has every permission).
PERMISSION = "analytics.view_rollup"


@staff_member_required
def analytics_view(request: HttpRequest) -> HttpResponse:
    """Staff only (anyone else is sent to the admin login), with PERMISSION (else a 403); an
    unknown template id is a 404."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = AnalyticsFilterForm(request.GET or None)
    template: Template | None = None
    valid = form.is_bound and form.is_valid()
    filters = form.cleaned_data if valid else default_filters()
    if filters.get("template"):
        template = Template.objects.select_related("client").filter(pk=filters["template"]).first()
        if template is None:
            raise Http404("No such template.")
    context = analytics_page_context(
        start=filters["start"],
        end=filters["end"],
        channel=filters.get("channel") or None,
        template=template,
    )
    context |= {
        **admin.site.each_context(request),
        # Invalid: as typed, with its errors; else the range shown (defaults filled in).
        "form": form if form.errors else AnalyticsFilterForm(initial=filters),
        "title": f"Analytics: {template.key}" if template else "Analytics",
    }
    return render(request, "admin/analytics.html", context)
