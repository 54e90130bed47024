"""analytics_report over seeded Rollup rows: sums, rates, percentiles, cost, grouping, scope."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.analytics.selectors import analytics_report
from tests.apps.analytics.seeding import T0, hist, rollup
from tests.factories import ApiClientFactory, TemplateFactory

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def test_a_day_sums_its_hours_with_rates_latency_and_cost() -> None:
    client = ApiClientFactory()
    template = TemplateFactory(client=client, key="welcome")
    rollup(
        client=client,
        template=template,
        hour=T0 + 3 * H,
        accepted=10,
        skipped=2,
        skipped_reasons={"opted_out": 2},
    )
    rollup(
        client=client,
        template=template,
        hour=T0 + 3 * H,
        variant="A",
        provider="sendgrid",
        sent=4,
        delivered=3,
        opened=2,
        clicked=1,
        failed=1,
        accept_to_sent_ms_sum=4 * 40,
        accept_to_sent_ms_hist=hist(40, 40, 40, 40),
        sent_to_delivered_ms_sum=3 * 2000,
        sent_to_delivered_ms_hist=hist(2000, 2000, 2000),
        cost_micros=4 * 250,
    )
    rollup(
        client=client,
        template=template,
        hour=T0 + 20 * H,
        variant="B",
        provider="sendgrid",
        sent=4,
        delivered=4,
        read=1,
        dead=1,
        accept_to_sent_ms_sum=4 * 700,
        accept_to_sent_ms_hist=hist(700, 700, 700, 700),
        cost_micros=1_000_001,
        skipped=1,
        skipped_reasons={"opted_out": 1, "quiet_hours": 0},
    )

    report = analytics_report(client=client, start=T0, end=T0 + D, group_by="day").as_dict()

    assert [row["key"] for row in report["rows"]] == ["2026-11-01"]
    day = report["rows"][0]
    assert day["counts"] == {
        "accepted": 10,
        "skipped": 3,
        "digested": 0,
        "cancelled": 0,
        "sent": 8,
        "delivered": 7,
        "opened": 2,
        "clicked": 1,
        "read": 1,
        "failed": 1,
        "dead": 1,
    }
    assert day["skipped_reasons"] == {"opted_out": 3, "quiet_hours": 0}
    assert day["rates"] == {
        "delivery": 0.875,
        "open": 0.25,
        "click": 0.125,
        "read": 0.125,
        "failure": round(2 / 9, 6),  # (failed 1 + dead 1) / (sent 8 + dead 1)
    }
    # 4 samples <= 50 ms and 4 <= 1000 ms: p50 is the 4th (50), p95 the 8th (1000).
    assert day["latency_ms"]["accept_to_sent"] == {"count": 8, "p50": 50, "p95": 1000, "mean": 370}
    assert day["latency_ms"]["sent_to_delivered"] == {
        "count": 3,
        "p50": 2500,
        "p95": 2500,
        "mean": 2000,
    }
    assert day["cost"] == "1.001001"
    assert report["currency"] == "USD"
    assert report["totals"]["counts"] == day["counts"]
    assert report["totals"]["cost"] == "1.001001"


@pytest.mark.parametrize(
    ("counts", "failure"),
    [
        ({"sent": 10, "failed": 10}, 1.0),  # ten sent, all bounced: `failed` follows a send
        ({"sent": 10, "dead": 10}, 0.5),  # ten sent, ten never sent (dead)
        ({"sent": 4, "failed": 1, "dead": 1}, 0.4),
        ({"dead": 3}, 1.0),
        ({"accepted": 3}, None),
    ],
)
def test_the_failure_rate_counts_a_failed_delivery_once(
    counts: dict[str, int], failure: float | None
) -> None:
    client = ApiClientFactory()
    rollup(client=client, template=TemplateFactory(client=client), hour=T0, **counts)

    report = analytics_report(client=client, start=T0, end=T0 + H, group_by="hour")

    assert report.totals.rates()["failure"] == failure


def test_no_samples_give_null_rates_and_percentiles() -> None:
    client = ApiClientFactory()
    template = TemplateFactory(client=client)
    rollup(client=client, template=template, hour=T0, accepted=5)

    row = analytics_report(client=client, start=T0, end=T0 + H, group_by="hour").rows[0]

    assert row.key == "2026-11-01T00:00:00Z"
    assert row.rates() == dict.fromkeys(("delivery", "open", "click", "read", "failure"))
    assert row.latency()["accept_to_sent"] == {"count": 0, "p50": None, "p95": None, "mean": None}
    assert row.cost() == "0.000000"


def test_days_are_utc_buckets_with_data_only_and_to_is_exclusive() -> None:
    client = ApiClientFactory()
    template = TemplateFactory(client=client)
    for hour in (T0 - H, T0, T0 + 23 * H, T0 + 2 * D, T0 + 3 * D):
        rollup(client=client, template=template, hour=hour, accepted=1)

    report = analytics_report(client=client, start=T0, end=T0 + 3 * D, group_by="day")

    assert [(r.key, r.counts["accepted"]) for r in report.rows] == [
        ("2026-11-01", 2),
        ("2026-11-03", 1),
    ]
    assert report.totals.counts["accepted"] == 3


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("channel", [("email", 3), ("sms", 4)]),
        ("template", [("a_template", 1), ("b_template", 6)]),
        ("variant", [("", 4), ("A", 1), ("B", 2)]),
        ("provider", [("", 4), ("sendgrid", 3)]),
    ],
)
def test_grouping_by_each_dimension(group_by: str, expected: list[tuple[str, int]]) -> None:
    client = ApiClientFactory()
    a = TemplateFactory(client=client, key="a_template")
    b = TemplateFactory(client=client, key="b_template")
    rollup(client=client, template=a, hour=T0, variant="A", provider="sendgrid", sent=1)
    rollup(client=client, template=b, hour=T0, variant="B", provider="sendgrid", sent=2)
    rollup(client=client, template=b, hour=T0 + H, channel="sms", sent=4)

    report = analytics_report(client=client, start=T0, end=T0 + D, group_by=group_by)

    assert [(r.key, r.counts["sent"]) for r in report.rows] == expected


def test_over_every_client_a_template_group_is_client_and_key() -> None:
    shop, bank = ApiClientFactory(name="shop"), ApiClientFactory(name="bank")
    rollup(client=shop, template=TemplateFactory(client=shop, key="welcome"), hour=T0, sent=1)
    rollup(client=bank, template=TemplateFactory(client=bank, key="welcome"), hour=T0, sent=10)

    every = analytics_report(client=None, start=T0, end=T0 + D, group_by="template")
    own = analytics_report(client=shop, start=T0, end=T0 + D, group_by="template")

    assert [(r.key, r.counts["sent"]) for r in every.rows] == [
        ("bank/welcome", 10),
        ("shop/welcome", 1),
    ]
    assert [(r.key, r.counts["sent"]) for r in own.rows] == [("welcome", 1)]


def test_a_client_sees_its_own_rows_and_none_means_every_client() -> None:
    mine, other = ApiClientFactory(), ApiClientFactory()
    rollup(client=mine, template=TemplateFactory(client=mine, key="t"), hour=T0, sent=1)
    rollup(client=other, template=TemplateFactory(client=other, key="t"), hour=T0, sent=10)

    own = analytics_report(client=mine, start=T0, end=T0 + D, group_by="day")
    every = analytics_report(client=None, start=T0, end=T0 + D, group_by="day")

    assert own.totals.counts["sent"] == 1
    assert every.totals.counts["sent"] == 11


def test_template_and_channel_filters() -> None:
    client = ApiClientFactory()
    a = TemplateFactory(client=client, key="a")
    b = TemplateFactory(client=client, key="b")
    rollup(client=client, template=a, hour=T0, channel="sms", sent=1)
    rollup(client=client, template=a, hour=T0, channel="push", sent=2)
    rollup(client=client, template=b, hour=T0, channel="sms", sent=4)

    report = analytics_report(
        client=client, start=T0, end=T0 + D, group_by="day", template_key="a", channel="sms"
    )

    assert report.totals.counts["sent"] == 1


def test_an_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="group_by"):
        analytics_report(client=None, start=T0, end=T0 + D, group_by="week")
