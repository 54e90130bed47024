"""`make run`'s database is SQLite: `"send_at": "best_time"` reads the engagement history there
too (a portable ORM query, the local hour worked out in Python), for a recipient in a half-hour
zone and one whose stored timezone cannot be loaded. Runs the real commands in a subprocess
against a fresh SQLite file, as `make run` does."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.sqlite import sqlite_manage

SCRIPT = """
import datetime as dt, json, sys
from zoneinfo import ZoneInfo
from django.utils import timezone
from rest_framework.test import APIClient
from apps.deliveries.models import Delivery, DeliveryEvent
from apps.recipients.models import Recipient
api = APIClient()
api.credentials(HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
body = {"recipient": "demo-user", "template": "welcome", "channels": ["email"],
        "variables": {"order_id": "A-1"}}
history = api.post("/api/v1/notifications", body, format="json")
now = timezone.now()
results = []
for zone, shown in (("Asia/Kolkata", "Asia/Kolkata"), ("Mars/Olympus", "UTC")):
    Recipient.objects.filter(external_id="demo-user").update(timezone=zone)
    local_now = now.astimezone(ZoneInfo(shown))
    best = (local_now.hour + 3) % 24
    # Six opens at 20 past that local hour, on the last six days, of one earlier delivery
    Delivery.objects.all().update(sent_at=now - dt.timedelta(days=8))
    delivery = Delivery.objects.get(notification_id=history.json()["id"])
    DeliveryEvent.objects.filter(delivery=delivery, status="opened").delete()
    for days in range(1, 7):
        day = local_now.date() - dt.timedelta(days=days)
        at = dt.datetime.combine(day, dt.time(best, 20), ZoneInfo(shown))
        event = DeliveryEvent.objects.create(delivery=delivery, status="opened")
        DeliveryEvent.objects.filter(pk=event.pk).update(at=at)
    response = api.post("/api/v1/notifications", {**body, "send_at": "best_time"}, format="json")
    [summary] = response.json()["deliveries"]
    expected = local_now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=3)
    event = DeliveryEvent.objects.get(delivery_id=summary["id"])
    results.append({
        "status": response.status_code,
        "delivery": summary["status"],
        "on_time": dt.datetime.fromisoformat(summary["not_before"]) == expected,
        "detail": event.detail,
        "best": best,
    })
print(json.dumps({"history": history.status_code, "results": results}))
"""


def test_best_time_on_sqlite(tmp_path: Path) -> None:
    manage = sqlite_manage(tmp_path)
    manage("migrate", "--noinput")
    seeded = json.loads(manage("seed_demo").strip().splitlines()[-1])
    out = manage("shell", "-c", f"import sys; sys.argv = ['', {seeded['api_key']!r}]\n{SCRIPT}")
    result = json.loads(out.strip().splitlines()[-1])

    kolkata, mars = result["results"]
    assert result["history"] == 202
    assert {k: v for k, v in kolkata.items() if k != "best"} == {
        "status": 202,
        "delivery": "scheduled",
        "on_time": True,
        "detail": f"best time: {kolkata['best']:02d}:00 Asia/Kolkata (6 engagements in 90 days)",
    }
    assert {k: v for k, v in mars.items() if k != "best"} == {
        "status": 202,
        "delivery": "scheduled",
        "on_time": True,
        "detail": f"best time: {mars['best']:02d}:00 UTC (6 engagements in 90 days; "
        "unknown timezone 'Mars/Olympus', UTC used)",
    }
