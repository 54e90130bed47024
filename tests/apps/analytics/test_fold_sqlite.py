"""`make run`'s database is SQLite: the fold's SQL (the NOT EXISTS probes, the rollup's insert
that ignores conflicts, the locked read that is a plain read there) works on it too, and two
folds at once (IMMEDIATE transactions: one after the other) still count each row once. The real
commands in a subprocess against a fresh SQLite file, as `make run` runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.sqlite import sqlite_manage

SCRIPT = """
import json, sys, threading
from django.db import connection
from rest_framework.test import APIClient
from apps.analytics.models import Rollup
from apps.analytics.fold_selectors import rollup_totals, timeline_totals
from apps.analytics.services import rollups_fold_pending
from apps.deliveries.models import Delivery
from apps.deliveries.sending import deliveries_attempt
api = APIClient()
api.credentials(HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
for n in range(3):
    r = api.post("/api/v1/notifications", {
        "recipient": "demo-user", "template": "welcome", "channels": ["email", "sms"],
        "variables": {"order_id": f"A-{n}"},
    }, format="json")
    assert r.status_code == 202, r.content
deliveries_attempt(delivery_ids=[str(pk) for pk in Delivery.objects.values_list("id", flat=True)])
folded = []
def fold():
    folded.append(rollups_fold_pending(limit=2).events)
    connection.close()
threads = [threading.Thread(target=fold) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({
    "folded": sum(folded), "again": rollups_fold_pending().rows,
    "rollup": rollup_totals(), "timeline": timeline_totals(),
    "statuses": sorted(Delivery.objects.values_list("status", flat=True)),
    "providers": sorted(set(Rollup.objects.values_list("provider", flat=True))),
}))
"""


def test_the_fold_counts_once_on_sqlite(tmp_path: Path) -> None:
    manage = sqlite_manage(tmp_path)
    manage("migrate", "--noinput")
    seeded = json.loads(manage("seed_demo").strip().splitlines()[-1])
    out = manage("shell", "-c", f"import sys; sys.argv = ['', {seeded['api_key']!r}]\n{SCRIPT}")
    result = json.loads(out.strip().splitlines()[-1])

    assert result["statuses"] == ["sent"] * 6
    assert result["folded"] == 12  # queued + sent for each of the 6 deliveries
    assert result["again"] == 0
    assert result["rollup"] == result["timeline"]
    assert result["rollup"]["accepted"] == result["rollup"]["sent"] == 6
    assert result["providers"] == ["", "console-email", "console-sms"]
