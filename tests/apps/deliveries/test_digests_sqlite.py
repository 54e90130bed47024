"""`make run`'s database is SQLite: the seeded digest template's notifications join a window and
beat's sweep closes the window there too (PostgreSQL's row-lock SQL is not SQLite's). Runs the
real commands in a subprocess against a fresh SQLite file, as `make run` does."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.sqlite import sqlite_manage

SCRIPT = """
import datetime as dt, json, sys
from django.utils import timezone
from rest_framework.test import APIClient
from apps.deliveries.digests import digests_close_due
from apps.deliveries.models import Delivery, Digest
api = APIClient()
api.credentials(HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
statuses = []
for n in range(3):
    r = api.post("/api/v1/notifications", {
        "recipient": "demo-user", "template": "new_comment", "channels": ["email"],
        "variables": {"post_id": "p1", "post_title": "Hello", "author": f"a{n}", "text": f"c{n}"},
    }, format="json")
    statuses.append(r.status_code)
digest = Digest.objects.first()
if digest is None:
    print(json.dumps({"statuses": statuses}))
    sys.exit(0)
closed = digests_close_due(now=timezone.now() + dt.timedelta(hours=2))
digest.refresh_from_db()
print(json.dumps({
    "statuses": statuses, "closed": closed, "outcome": digest.outcome,
    "item_count": digest.item_count,
    "digested": Delivery.objects.filter(status="digested").count(),
    "delivery_count": digest.delivery.notification.variables["count"],
}))
"""


def test_the_seeded_digest_joins_and_closes_on_sqlite(tmp_path: Path) -> None:
    manage = sqlite_manage(tmp_path)
    manage("migrate", "--noinput")
    seeded = json.loads(manage("seed_demo").strip().splitlines()[-1])
    out = manage("shell", "-c", f"import sys; sys.argv = ['', {seeded['api_key']!r}]\n{SCRIPT}")
    result = json.loads(out.strip().splitlines()[-1])

    assert result == {
        "statuses": [202, 202, 202],
        "closed": 1,
        "outcome": "sent",
        "item_count": 3,
        "digested": 3,
        "delivery_count": 3,
    }
