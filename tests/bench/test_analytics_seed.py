"""The analytics benchmark's seed: the rows it says, adding up to exactly the deliveries asked,
and the report over them agreeing (counts, labels, providers)."""

from __future__ import annotations

import pytest

from apps.analytics.models import Rollup
from apps.analytics.selectors import analytics_report
from apps.clients.models import ApiClient
from bench.analytics import seed_rollups, unseed_rollups
from bench.seed import Seed
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the seed runs VACUUM


def test_the_seed_has_the_rows_and_deliveries_it_states() -> None:
    key, raw = ApiKeyFactory.create_with_raw(name="bench-analytics")
    seed = Seed(client_id=key.client_id, api_key=raw, recipients=[])

    seeded = seed_rollups(seed, templates=2, deliveries=100_003, days=1)

    # 24 hours x 2 templates x 4 channels x (1 pre-send + 2 labels x (2+1+2+1)/4 providers)
    assert seeded.rows == 24 * 2 * (4 + 2 * 6) == Rollup.objects.count()
    assert seeded.deliveries == 100_003
    client = ApiClient.objects.get(pk=key.client_id)
    report = analytics_report(client=client, start=seeded.start, end=seeded.end, group_by="variant")
    assert [row.key for row in report.rows] == ["", "A", "B"]
    assert report.totals.counts["accepted"] == 100_003
    assert report.rows[0].counts["sent"] == 0
    assert report.rows[1].counts["sent"] > 0
    assert report.rows[2].counts["opened"] > report.rows[1].counts["opened"]  # B opens more
    providers = analytics_report(
        client=client, start=seeded.start, end=seeded.end, group_by="provider"
    )
    assert [row.key for row in providers.rows] == [
        "",
        "apns",
        "fcm",
        "inapp",
        "sendgrid",
        "ses",
        "twilio",
    ]
    assert providers.totals.latency()["accept_to_sent"]["p50"] == 500

    unseed_rollups(seed)
    assert Rollup.objects.count() == 0
