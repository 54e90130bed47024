"""`make run`'s database is SQLite: the report's histogram sums (JSON array elements in SQL),
UTC days and skipped reasons (added up in Python there) agree with the rows, through the
real commands (`seed_demo`, `seed_analytics_demo`) in a subprocess on a fresh SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.sqlite import sqlite_manage

SCRIPT = """
import datetime as dt, json
from collections import Counter
from apps.analytics.models import Rollup
from apps.analytics.selectors import analytics_report
from notifier import histograms
rows = list(Rollup.objects.all())
start = min(r.hour for r in rows).replace(hour=0)
end = max(r.hour for r in rows) + dt.timedelta(hours=1)
by_day = analytics_report(client=None, start=start, end=end, group_by="day")
by_channel = analytics_report(client=None, start=start, end=end, group_by="channel")
sms = [r for r in rows if r.channel == "sms"]
hist = histograms.total(r.accept_to_sent_ms_hist for r in sms)
reasons = Counter()
for r in rows:
    reasons.update(r.skipped_reasons)
days = sorted({r.hour.astimezone(dt.UTC).date().isoformat() for r in rows})
print(json.dumps({
    "days": [g.key for g in by_day.rows] == days,
    "sent": by_day.totals.counts["sent"] == sum(r.sent for r in rows),
    "reasons": by_channel.totals.skipped_reasons == dict(reasons),
    "sms_hist": [g for g in by_channel.rows if g.key == "sms"][0].latency_hists[
        "accept_to_sent"] == hist,
    "sms_p95": [g for g in by_channel.rows if g.key == "sms"][0].latency()[
        "accept_to_sent"]["p95"] == histograms.percentile(hist, 0.95),
    "cost": by_channel.totals.cost_micros == sum(r.cost_micros for r in rows),
    "channels": [g.key for g in by_channel.rows],
}))
"""


def test_the_report_adds_up_on_sqlite(tmp_path: Path) -> None:
    manage = sqlite_manage(tmp_path)
    manage("migrate", "--noinput")
    manage("seed_demo")
    manage("seed_analytics_demo", "--days", "3")

    out = manage("shell", "-c", SCRIPT)

    assert json.loads(out.strip().splitlines()[-1]) == {
        "days": True,
        "sent": True,
        "reasons": True,
        "sms_hist": True,
        "sms_p95": True,
        "cost": True,
        "channels": ["email", "inapp", "push", "sms"],
    }
