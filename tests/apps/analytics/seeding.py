"""Rollup rows for the report's tests, written directly (the aggregator is not under test)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.analytics.models import Rollup
from apps.clients.models import ApiClient
from apps.templates.models import Template
from notifier import histograms

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def hist(*samples_ms: int) -> list[int]:
    out = histograms.empty()
    for ms in samples_ms:
        out[histograms.bucket(ms)] += 1
    return out


def rollup(
    *, client: ApiClient, template: Template, hour: dt.datetime, channel: str = "email", **kw: Any
) -> Rollup:
    return Rollup.objects.create(client=client, template=template, hour=hour, channel=channel, **kw)
