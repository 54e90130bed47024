"""The analytics report as CSV (`Accept: text/csv`): one line per group, then the totals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer

from apps.analytics.models import COUNTERS
from apps.analytics.selectors import LATENCIES, RATES

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection), also after
# leading blanks (" =1+2" is a formula to some).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def cell(value: Any) -> str:
    """A CSV cell: None as empty, a text a spreadsheet would evaluate prefixed with `'`."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    risky = text.startswith(FORMULA_START) or text.lstrip().startswith(FORMULA_START)
    return "'" + text if risky else text


def header() -> list[str]:
    return [
        "group",
        *COUNTERS,
        "skipped_reasons",
        *(f"{rate}_rate" for rate in RATES),
        *(f"{name}_ms_{stat}" for name in LATENCIES for stat in ("count", "p50", "p95", "mean")),
        "cost",
        "currency",
    ]


def line(group: Mapping[str, Any], currency: str) -> list[str]:
    latency = group["latency_ms"]
    values: list[Any] = [
        group["key"],
        *(group["counts"][name] for name in COUNTERS),
        json.dumps(group["skipped_reasons"], sort_keys=True) if group["skipped_reasons"] else "",
        *(group["rates"][rate] for rate in RATES),
        *(latency[name][stat] for name in LATENCIES for stat in ("count", "p50", "p95", "mean")),
        group["cost"],
        currency,
    ]
    return [cell(v) for v in values]


def report_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header())
    for group in report["rows"]:
        writer.writerow(line(group, report["currency"]))
    writer.writerow(line({**report["totals"], "key": "total"}, report["currency"]))
    return out.getvalue()


class AnalyticsCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return report_csv(data).encode(self.charset)
