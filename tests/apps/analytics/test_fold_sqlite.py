"""`make run`'s database is SQLite: the fold's SQL (the NOT EXISTS probes, the rollup's upsert,
the locked read that is a plain read there) works on it too; the fold's own tests
(test_fold.py) pass on it as on PostgreSQL; two
folds at once (IMMEDIATE transactions: one after the other) still count each row once, priced
attempts included (the attempts' read-then-mark path); a batch adding to more than 1000 rollup
rows looks them up in chunks (SQLite refuses a longer OR). The real commands in a subprocess
against a fresh SQLite file, as `make run` runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.sqlite import sqlite_manage, sqlite_pytest

# console-email priced, so that its attempts wait in the queue and the fold adds their cost.
FOLD_TESTS = "tests/apps/analytics/test_fold.py"
PRICES = json.dumps({"email": {"console-email": "0.002"}})

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
folded, attempts = [], []
def fold():
    done = rollups_fold_pending(limit=2)
    folded.append(done.events)
    attempts.append(done.attempts)
    connection.close()
threads = [threading.Thread(target=fold) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({
    "folded": sum(folded), "attempts": sum(attempts), "again": rollups_fold_pending().rows,
    "rollup": rollup_totals(), "timeline": timeline_totals(),
    "statuses": sorted(Delivery.objects.values_list("status", flat=True)),
    "providers": sorted(set(Rollup.objects.values_list("provider", flat=True))),
}))
"""


def test_the_fold_counts_once_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_COSTS", PRICES)
    manage = sqlite_manage(tmp_path)
    manage("migrate", "--noinput")
    seeded = json.loads(manage("seed_demo").strip().splitlines()[-1])
    out = manage("shell", "-c", f"import sys; sys.argv = ['', {seeded['api_key']!r}]\n{SCRIPT}")
    result = json.loads(out.strip().splitlines()[-1])

    assert result["statuses"] == ["sent"] * 6
    assert result["folded"] == 12  # queued + sent for each of the 6 deliveries
    assert result["attempts"] == 3  # the priced emails' (the free SMS ones never queued)
    assert result["again"] == 0
    assert result["rollup"] == result["timeline"]
    assert result["rollup"]["accepted"] == result["rollup"]["sent"] == 6
    assert result["rollup"]["cost_micros"] == 3 * 2000
    assert result["providers"] == ["", "console-email", "console-sms"]


MANY_KEYS = """
import datetime as dt, json, sys, uuid
from django.db import transaction
from rest_framework.test import APIClient
from apps.analytics.models import Rollup
from apps.analytics.fold_selectors import rollup_totals, timeline_totals
from apps.analytics.services import rollup_fold
from apps.deliveries.models import Delivery, DeliveryEvent, Notification
api = APIClient()
api.credentials(HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
r = api.post("/api/v1/notifications", {
    "recipient": "demo-user", "template": "welcome", "channels": ["email"],
    "variables": {"order_id": "A-1"},
}, format="json")
assert r.status_code == 202, r.content
d = Delivery.objects.get()
t0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # hours before the first
with transaction.atomic():  # 1200 more deliveries, each created in an hour of its own
    for n in range(1200):
        notification = Notification.objects.get(pk=d.notification_id)
        notification.pk, notification.idempotency_key = uuid.uuid4(), None
        notification.save(force_insert=True)
        clone = Delivery.objects.get(pk=d.pk)
        clone.pk, clone.notification = uuid.uuid4(), notification
        clone.save(force_insert=True)
        e = DeliveryEvent.objects.create(delivery=clone, status="queued", detail="accepted")
        DeliveryEvent.objects.filter(pk=e.pk).update(at=t0 + dt.timedelta(hours=n))
folded = rollup_fold(limit=5000)
print(json.dumps({
    "events": folded.events, "rollups": folded.rollups, "rows": Rollup.objects.count(),
    "rollup": rollup_totals(), "timeline": timeline_totals(),
}))
"""


def test_a_batch_adding_to_more_than_1000_rollup_rows_folds_on_sqlite(tmp_path: Path) -> None:
    manage = sqlite_manage(tmp_path)
    manage("migrate", "--noinput")
    seeded = json.loads(manage("seed_demo").strip().splitlines()[-1])
    code = f"import sys; sys.argv = ['', {seeded['api_key']!r}]\n{MANY_KEYS}"
    result = json.loads(manage("shell", "-c", code).strip().splitlines()[-1])

    assert result["events"] == 1201
    assert result["rollups"] == result["rows"] == 1201  # 1200 hours of their own + the first's
    assert result["rollup"] == result["timeline"]
    assert result["rollup"]["accepted"] == 1201


def test_the_fold_tests_pass_on_sqlite_too(tmp_path: Path) -> None:
    # test_fold.py runs on PostgreSQL in the suite; here on a SQLite file, where the rows come
    # through the Python path (epoch hours, milliseconds) and the upsert's hours are adapted
    # to the ORM's stored text (else ON CONFLICT never matches: duplicate rollup rows).
    out = sqlite_pytest(tmp_path, FOLD_TESTS)

    summary = out.strip().splitlines()[-1]
    assert " passed" in summary, summary
    assert "skipped" not in summary, summary
    assert "failed" not in summary, summary
