"""The analytics query over 30 days of rollups equal to 5,000,000 deliveries (issue #17).

Seeds the Rollup rows a busy month leaves (one INSERT ... SELECT from generate_series): per hour,
per template, per channel, a pre-send row (variant "", provider "": accepted, skipped) and a row
per A/B label (A, B) x provider of that channel (sent and after, latency histograms, cost). The
`accepted` counters add up to exactly `deliveries`. Then times `GET /api/v1/analytics` for 30 days
grouped by day and by variant: in-process (the selector alone) and over HTTP (the served API),
the median of `repeats` each. Target: under 100 ms.
"""

from __future__ import annotations

import datetime as dt
import http.client
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.report import Figure
from bench.seed import Seed

TARGET_MS = 100.0
DELIVERIES = 5_000_000
DAYS = 30
# channel -> its providers (each a row per A/B label and hour)
PROVIDERS = {
    "email": ("sendgrid", "ses"),
    "sms": ("twilio",),
    "push": ("fcm", "apns"),
    "inapp": ("inapp",),
}
VARIANTS = ("A", "B")
# The share of a row's sent deliveries in each latency bucket (notifier.histograms' 16).
ACCEPT_TO_SENT_SHAPE = (0, 5, 20, 30, 25, 10, 5, 3, 1, 1, 0, 0, 0, 0, 0, 0)
SENT_TO_DELIVERED_SHAPE = (0, 0, 1, 4, 15, 30, 25, 15, 6, 3, 1, 0, 0, 0, 0, 0)

SEED_TEMPLATE = """
WITH hours AS (
    SELECT %(start)s::timestamptz + make_interval(hours => h) AS hour, h
    FROM generate_series(0, %(hours)s - 1) AS h
),
cells AS (  -- one per hour x template x channel, numbered k = 0 .. n-1
    SELECT hours.hour, t.template_id, c.channel, c.providers,
           (hours.h * %(templates)s + t.i) * 4 + c.i AS k
    FROM hours
    CROSS JOIN unnest(%(template_ids)s::bigint[]) WITH ORDINALITY AS t(template_id, i)
    CROSS JOIN unnest(%(channels)s::text[], %(provider_lists)s::text[])
        WITH ORDINALITY AS c(channel, providers, i)
),
accepted AS (  -- floor((k+1)N/n) - floor(kN/n): the counts add up to N exactly
    SELECT cells.*,
           (%(deliveries)s::bigint * (k + 1) / %(cells)s
            - %(deliveries)s::bigint * k / %(cells)s) AS accepted
    FROM cells
),
presend AS (
    INSERT INTO analytics_rollup (
        hour, client_id, template_id, channel, variant, provider, accepted, skipped,
        digested, cancelled, sent, delivered, opened, clicked, read, failed, dead,
        skipped_reasons, accept_to_sent_ms_sum, sent_to_delivered_ms_sum, cost_micros
    )
    SELECT hour, %(client_id)s, template_id, channel, '', '', accepted, accepted / 50, 0,
           0, 0, 0, 0, 0, 0, 0, 0,
           jsonb_build_object('opted_out', accepted / 100, 'quiet_hours',
                              accepted / 50 - accepted / 100),
           0, 0, 0
    FROM accepted
    RETURNING 1
),
sending AS (  -- each cell's sends split between its providers and the two labels
    SELECT a.hour, a.template_id, a.channel, p.provider, v.variant,
           (a.accepted * 97 / 100) / (cardinality(string_to_array(a.providers, ',')) * 2)
               AS sent
    FROM accepted a
    CROSS JOIN LATERAL unnest(string_to_array(a.providers, ',')) AS p(provider)
    CROSS JOIN unnest(%(variants)s::text[]) AS v(variant)
)
INSERT INTO analytics_rollup (
    hour, client_id, template_id, channel, variant, provider, accepted, skipped, digested,
    cancelled, sent, delivered, opened, clicked, read, failed, dead, skipped_reasons,
    accept_to_sent_ms_sum, sent_to_delivered_ms_sum, cost_micros, {bucket_columns}
)
SELECT hour, %(client_id)s, template_id, channel, variant, provider, 0, 0, 0, 0,
       sent, sent * 95 / 100,
       sent * (CASE variant WHEN 'A' THEN 20 ELSE 23 END) / 100,
       sent * (CASE variant WHEN 'A' THEN 4 ELSE 5 END) / 100,
       CASE channel WHEN 'inapp' THEN sent / 3 ELSE 0 END,
       sent / 100, sent / 1000, '{}'::jsonb,
       sent * 900,
       sent * 2400,
       sent * (CASE channel WHEN 'sms' THEN 7900 WHEN 'email' THEN 100 ELSE 0 END),
       {bucket_values}
FROM sending
"""


def _seed_sql() -> str:
    """SEED_TEMPLATE with each histogram bucket's column: sent (or delivered) x the shape's
    share of that bucket (after Django's setup: the names are the model's)."""
    from apps.analytics.models import bucket_columns

    columns = [*bucket_columns("accept_to_sent"), *bucket_columns("sent_to_delivered")]
    values = [f"sent * {w} / 100" for w in ACCEPT_TO_SENT_SHAPE] + [
        f"sent * 95 / 100 * {w} / 100" for w in SENT_TO_DELIVERED_SHAPE
    ]
    return (
        SEED_TEMPLATE.replace("{bucket_columns}", ", ".join(columns))
        .replace("{bucket_values}", ", ".join(values))
        .replace(
            "{bucket_values}",
            ", ".join(
                [f"sent * {w} / 100" for w in ACCEPT_TO_SENT_SHAPE]
                + [f"sent * 95 / 100 * {w} / 100" for w in SENT_TO_DELIVERED_SHAPE]
            ),
        )
    )


@dataclass
class Seeded:
    rows: int
    deliveries: int
    start: dt.datetime
    end: dt.datetime


def seed_rollups(
    seed_: Seed, *, templates: int = 4, deliveries: int = DELIVERIES, days: int = DAYS
) -> Seeded:
    """The month of rollups for the seed's client: `templates` templates (created here)."""
    from django.db import connection, transaction

    from apps.analytics.models import Rollup
    from apps.clients.models import ApiClient
    from apps.ops.factories import TemplateFactory

    client = ApiClient.objects.get(pk=seed_.client_id)
    ids = [TemplateFactory(client=client, key=f"bench_analytics_{i}").pk for i in range(templates)]
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(days=days)
    hours = days * 24
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _seed_sql(),
            {
                "start": start,
                "hours": hours,
                "templates": templates,
                "template_ids": ids,
                "channels": list(PROVIDERS),
                "provider_lists": [",".join(p) for p in PROVIDERS.values()],
                "cells": hours * templates * len(PROVIDERS),
                "deliveries": deliveries,
                "client_id": client.pk,
                "variants": list(VARIANTS),
            },
        )
    with connection.cursor() as cursor:  # what autovacuum would have done by then
        cursor.execute("VACUUM ANALYZE analytics_rollup")
    mine = Rollup.objects.filter(client=client)
    return Seeded(
        rows=mine.count(),
        deliveries=sum(mine.values_list("accepted", flat=True)),
        start=start,
        end=end,
    )


def unseed_rollups(seed_: Seed) -> None:
    """Delete the rollups in one statement (the client's cascade would collect them one by one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM analytics_rollup WHERE client_id = %s", [seed_.client_id])


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_selector(seed_: Seed, seeded: Seeded, group_by: str, repeats: int) -> list[float]:
    from apps.analytics.selectors import analytics_report
    from apps.clients.models import ApiClient

    client = ApiClient.objects.get(pk=seed_.client_id)
    samples = []
    for _ in range(repeats + 1):  # the first warms the connection and the cache: dropped
        began = time.perf_counter()
        report = analytics_report(
            client=client, start=seeded.start, end=seeded.end, group_by=group_by
        )
        samples.append(time.perf_counter() - began)
    assert report.totals.counts["accepted"] == seeded.deliveries, report.totals.counts
    return samples[1:]


def time_http(
    base_url: str, seed_: Seed, seeded: Seeded, group_by: str, repeats: int, accept: str
) -> list[float]:
    """Over one kept-alive HTTP connection to the served API."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    query = (
        f"from={seeded.start:%Y-%m-%dT%H:%M:%SZ}&to={seeded.end:%Y-%m-%dT%H:%M:%SZ}"
        f"&group_by={group_by}"
    )
    headers = {"Authorization": f"Bearer {seed_.api_key}", "Accept": accept}
    samples = []
    try:
        for _ in range(repeats + 1):
            began = time.perf_counter()
            conn.request("GET", f"/api/v1/analytics?{query}", headers=headers)
            response = conn.getresponse()
            body = response.read()
            samples.append(time.perf_counter() - began)
            if response.status != 200:
                raise RuntimeError(f"analytics answered {response.status}: {body[:300]!r}")
    finally:
        conn.close()
    return samples[1:]


def run_analytics(
    base_url: str, seed_: Seed, *, repeats: int = 15, templates: int = 4
) -> list[Figure]:
    seeded = seed_rollups(seed_, templates=templates)
    note = (
        f"{seeded.rows:,} rollup rows = {seeded.deliveries:,} deliveries over {DAYS} days "
        f"({templates} templates x 4 channels x (1 pre-send + 2 labels x 1-2 providers) per hour); "
        f"median of {repeats}"
    )
    figures = []
    try:
        for group_by in ("day", "variant"):
            cases = [
                ("in-process", time_selector(seed_, seeded, group_by, repeats)),
                ("HTTP JSON", time_http(base_url, seed_, seeded, group_by, repeats, "*/*")),
                ("HTTP CSV", time_http(base_url, seed_, seeded, group_by, repeats, "text/csv")),
            ]
            for how, samples in cases:
                value = _median_ms(samples)
                figures.append(
                    Figure(
                        bench="analytics",
                        name=f"30 days by {group_by}, {how}",
                        value=value,
                        unit="ms",
                        target=f"< {TARGET_MS:g} ms",
                        met=value < TARGET_MS,
                        note=note if not figures else "",
                    )
                )
    finally:
        unseed_rollups(seed_)
    return figures
