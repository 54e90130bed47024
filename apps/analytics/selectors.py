"""The analytics report: the hourly Rollup rows summed per day, hour, channel, template, A/B
label or provider, with rates, latency percentiles and cost. Reads Rollup only, never deliveries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import CharField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Concat, TruncDay

from apps.analytics.models import COUNTERS, MEASURES, Rollup, bucket_columns
from apps.clients.models import ApiClient
from notifier import histograms

GROUP_BY = ("day", "hour", "channel", "template", "variant", "provider")
LATENCIES = ("accept_to_sent", "sent_to_delivered")
# rate -> (numerator counters, denominator counters)
RATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "delivery": (("delivered",), ("sent",)),
    "open": (("opened",), ("sent",)),
    "click": (("clicked",), ("sent",)),
    "read": (("read",), ("sent",)),
    # `failed` (a provider's bounce, drop, undelivered) follows a send, so it is already in
    # `sent`; `dead` (retries exhausted, a permanent error) is a send that never happened.
    "failure": (("failed", "dead"), ("sent", "dead")),
}
MICROS = Decimal(1_000_000)


def currency() -> str:
    return str(getattr(settings, "ANALYTICS_CURRENCY", "USD"))


@dataclass
class Group:
    """The summed rollups of one group (a day, a channel, ...) or of all of them (totals)."""

    key: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    latency_sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LATENCIES, 0))
    latency_hists: dict[str, list[int]] = field(
        default_factory=lambda: {name: histograms.empty() for name in LATENCIES}
    )
    cost_micros: int = 0

    def add(self, other: Group) -> None:
        for name in COUNTERS:
            self.counts[name] += other.counts[name]
        _add_reasons(self.skipped_reasons, other.skipped_reasons)
        for name in LATENCIES:
            self.latency_sums[name] += other.latency_sums[name]
            histograms.add(self.latency_hists[name], other.latency_hists[name])
        self.cost_micros += other.cost_micros

    def rates(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for rate, (over, under) in RATES.items():
            denominator = sum(self.counts[c] for c in under)
            numerator = sum(self.counts[c] for c in over)
            out[rate] = round(numerator / denominator, 6) if denominator else None
        return out

    def latency(self) -> dict[str, dict[str, int | None]]:
        out: dict[str, dict[str, int | None]] = {}
        for name in LATENCIES:
            hist = self.latency_hists[name]
            samples = sum(hist)
            out[name] = {
                "count": samples,
                "p50": histograms.percentile(hist, 0.5),
                "p95": histograms.percentile(hist, 0.95),
                "mean": round(self.latency_sums[name] / samples) if samples else None,
            }
        return out

    def cost(self) -> str:
        return str((Decimal(self.cost_micros) / MICROS).quantize(Decimal("0.000001")))

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "counts": dict(self.counts),
            "skipped_reasons": dict(sorted(self.skipped_reasons.items())),
            "rates": self.rates(),
            "latency_ms": self.latency(),
            "cost": self.cost(),
        }


@dataclass
class Report:
    group_by: str
    start: dt.datetime
    end: dt.datetime
    currency: str
    rows: list[Group]
    totals: Group

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.end,
            "group_by": self.group_by,
            "currency": self.currency,
            "rows": [row.as_dict() for row in self.rows],
            "totals": self.totals.as_dict(),
            # The A/B block (the "experiment" per label) joins here when a test is asked for.
            "experiment": None,
        }


def _add_reasons(into: dict[str, int], other: Mapping[str, Any]) -> None:
    for reason, count in other.items():
        into[str(reason)] = into.get(str(reason), 0) + int(count)


def _bucket_expression(group_by: str, *, every_client: bool = False) -> Any:
    if group_by == "day":
        return TruncDay("hour", tzinfo=dt.UTC)
    if group_by == "hour":
        return F("hour")
    if group_by == "template":
        # Over every client (an ops key) two clients' templates may share a key: the group is
        # "client name/template key", never the two summed.
        if every_client:
            return Concat(
                F("client__name"), Value("/"), F("template__key"), output_field=CharField()
            )
        return F("template__key")
    return F(group_by)


def _bucket_key(group_by: str, value: Any) -> str:
    if group_by in ("day", "hour"):
        # naive from a raw cursor (a UTC day's start), aware from the ORM
        moment = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
        moment = moment.astimezone(dt.UTC)
        return moment.date().isoformat() if group_by == "day" else f"{moment:%Y-%m-%dT%H:%M:%SZ}"
    return str(value)


def _hist_sums() -> dict[str, Any]:
    """One SUM per histogram bucket: the histograms add up element-wise in the database.
    Only rows that counted a sample of that measure are read (the others hold zeros)."""
    sums: dict[str, Any] = {}
    for name, counter in MEASURES.items():
        for i, column in enumerate(bucket_columns(name)):
            sums[f"{name}__{i}"] = Sum(column, filter=Q(**{f"{counter}__gt": 0}))
    return sums


def rollups_scoped(
    *,
    client: ApiClient | None,
    start: dt.datetime,
    end: dt.datetime,
    template_key: str | None = None,
    channel: str | None = None,
) -> QuerySet[Rollup]:
    """The rollup rows of [start, end) (by the hour's start), for one client or every one."""
    qs = Rollup.objects.filter(hour__gte=start, hour__lt=end)
    if client is not None:
        qs = qs.filter(client=client)
    if template_key:
        qs = qs.filter(template__key=template_key)
    if channel:
        qs = qs.filter(channel=channel)
    return qs


def _sums() -> dict[str, Any]:
    sums: dict[str, Any] = {f"n_{name}": Coalesce(Sum(name), 0) for name in COUNTERS}
    sums["cost_micros_sum"] = Coalesce(Sum("cost_micros"), 0)
    for name in LATENCIES:
        sums[f"{name}_ms"] = Coalesce(Sum(f"{name}_ms_sum"), 0)
    return sums | _hist_sums()


def _group_of(key: str, row: Mapping[str, Any]) -> Group:
    group = Group(key=key)
    group.counts = {name: int(row[f"n_{name}"]) for name in COUNTERS}
    group.cost_micros = int(row["cost_micros_sum"])
    for name in LATENCIES:
        group.latency_sums[name] = int(row[f"{name}_ms"])
        group.latency_hists[name] = [int(row[f"{name}__{i}"] or 0) for i in range(histograms.SIZE)]
    return group


def _groups(qs: QuerySet[Rollup], group_by: str, *, every_client: bool) -> dict[str, Group]:
    rows = (
        qs.annotate(bucket=_bucket_expression(group_by, every_client=every_client))
        .values("bucket")
        .annotate(**_sums())
        .order_by("bucket")
    )
    groups: dict[str, Group] = {}
    for row in rows:
        group = _group_of(_bucket_key(group_by, row["bucket"]), row)
        groups[group.key] = group
    return groups


SKIPPED_REASONS_SQL = """
SELECT r.bucket, kv.key, SUM(kv.value::bigint)
FROM ({rows} OFFSET 0) AS r, jsonb_each_text(r.skipped_reasons) AS kv
GROUP BY 1, 2
"""


def _skipped_reasons(
    qs: QuerySet[Rollup], group_by: str, *, every_client: bool
) -> Iterable[tuple[Any, dict[str, Any]]]:
    """(bucket, reasons) of the rows that skipped something: added up by PostgreSQL (elsewhere,
    SQLite under `make run`, in Python)."""
    rows = (
        qs.filter(skipped__gt=0)
        .annotate(bucket=_bucket_expression(group_by, every_client=every_client))
        .values_list("bucket", "skipped_reasons")
    )
    if connection.vendor != "postgresql":
        return rows
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(SKIPPED_REASONS_SQL.format(rows=sql), params)
        return [(bucket, {reason: count}) for bucket, reason, count in cursor.fetchall()]


def analytics_report(
    *,
    client: ApiClient | None,
    start: dt.datetime,
    end: dt.datetime,
    group_by: str,
    template_key: str | None = None,
    channel: str | None = None,
) -> Report:
    """The report of [start, end) grouped by `group_by` (GROUP_BY), for `client` (None: every
    client's, for ops keys; grouped by template, a group is then "client name/template key").
    One row per group that has data, in the group's order."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {GROUP_BY}")
    qs = rollups_scoped(
        client=client, start=start, end=end, template_key=template_key, channel=channel
    )
    every_client = client is None
    groups = _groups(qs, group_by, every_client=every_client)
    for bucket, reasons in _skipped_reasons(qs, group_by, every_client=every_client):
        key = _bucket_key(group_by, bucket)
        if key in groups and isinstance(reasons, dict):
            _add_reasons(groups[key].skipped_reasons, reasons)
    totals = Group(key="total")
    for group in groups.values():
        totals.add(group)
    return Report(
        group_by=group_by,
        start=start,
        end=end,
        currency=currency(),
        rows=list(groups.values()),
        totals=totals,
    )


CELL_REASONS_SQL = """
SELECT r.bucket, r.channel, kv.key, SUM(kv.value::bigint)
FROM ({rows} OFFSET 0) AS r, jsonb_each_text(r.skipped_reasons) AS kv
GROUP BY 1, 2, 3
"""


def _reasons_per_cell(qs: QuerySet[Rollup]) -> dict[tuple[str, str], dict[str, int]]:
    """The skipped reasons per (UTC day, channel) of the rows that skipped something."""
    rows = (
        qs.filter(skipped__gt=0)
        .annotate(bucket=TruncDay("hour", tzinfo=dt.UTC))
        .values_list("bucket", "channel", "skipped_reasons")
    )
    found: Iterable[tuple[Any, Any, Mapping[str, Any]]] = rows
    if connection.vendor == "postgresql":  # added up by PostgreSQL, as _skipped_reasons does
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(CELL_REASONS_SQL.format(rows=sql), params)
            found = [(day, ch, {reason: n}) for day, ch, reason, n in cursor.fetchall()]
    out: dict[tuple[str, str], dict[str, int]] = {}
    for day, channel, reasons in found:
        _add_reasons(out.setdefault((_bucket_key("day", day), str(channel)), {}), reasons or {})
    return out


def analytics_day_channel(
    *,
    client: ApiClient | None,
    start: dt.datetime,
    end: dt.datetime,
    template_key: str | None = None,
    channel: str | None = None,
) -> dict[tuple[str, str], Group]:
    """The rollups of [start, end) summed per (UTC day, channel) in one grouped query (and one
    for the skipped reasons), keyed ("2026-11-01", "email"): the admin page derives its per day,
    per channel and cost charts from these cells. Only cells with data, in (day, channel) order.
    """
    qs = rollups_scoped(
        client=client, start=start, end=end, template_key=template_key, channel=channel
    )
    rows = (
        qs.annotate(day=TruncDay("hour", tzinfo=dt.UTC))
        .values("day", "channel")
        .annotate(**_sums())
        .order_by("day", "channel")
    )
    reasons = _reasons_per_cell(qs)
    cells: dict[tuple[str, str], Group] = {}
    for row in rows:
        cell = (_bucket_key("day", row["day"]), str(row["channel"]))
        group = _group_of(cell[0], row)
        _add_reasons(group.skipped_reasons, reasons.get(cell, {}))
        cells[cell] = group
    return cells


def groups_merged(cells: Mapping[tuple[str, str], Group], *, by: int) -> list[Group]:
    """The cells of analytics_day_channel summed per day (`by=0`) or per channel (`by=1`), in
    that key's order."""
    merged: dict[str, Group] = {}
    for cell, group in cells.items():
        key = cell[by]
        merged.setdefault(key, Group(key=key)).add(group)
    return [merged[key] for key in sorted(merged)]
