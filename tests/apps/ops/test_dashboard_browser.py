"""The dashboard in Debian's headless Chromium, as an operator sees it (`UPDATE_SCREENSHOTS=1`
writes this test's screenshot to docs/dashboard.png; `python -m scripts.screenshots` retakes the
README's from the page `make run` serves)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import sync_playwright

from apps.deliveries.guards import provider_breaker
from apps.deliveries.queueing import publish_sends
from tests.factories import ApiClientFactory
from tests.support.history import seed_history
from tests.support.processes import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM = "/usr/bin/chromium"


def test_staff_sees_the_dashboard_in_a_browser(
    live_server: object, tmp_path: Path, clean_redis: redis.Redis, settings: Any
) -> None:
    history = seed_history(client=ApiClientFactory(), now=timezone.now())
    # A backlog on sms.low (one delivery per message) and an open breaker, so the page shows them.
    settings.SEND_BATCH_SIZE = 1
    publish_sends([(f"00000000-0000-0000-0000-{i:012d}", "sms", "low") for i in range(37)])
    breaker = provider_breaker("console-email")
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    User.objects.create_user("ops", password="a-long-password", is_staff=True)
    shot = tmp_path / "dashboard.png"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server}/admin/dashboard/")
        assert "/admin/login/" in page.url  # not logged in yet
        page.fill("#id_username", "ops")
        page.fill("#id_password", "a-long-password")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server}/admin/dashboard/")
        charts = page.locator("svg[role=img]")
        assert charts.count() == 5
        assert all(charts.nth(i).is_visible() for i in range(5))
        email = history.totals["email"]
        assert page.locator("[data-channel=email] .ops-totals").inner_text() == (
            f"email in 24 h: sent {email['sent']}, failed {email['failed']}, dead {email['dead']}"
        )
        assert page.locator("#dead-letters a", has_text="sendgrid 503").count() == 1
        assert page.locator("#queues tr", has_text="sms.low").inner_text().split() == [
            "sms.low",
            "37",
        ]
        assert page.locator("#breakers .ops-state-open").inner_text() == "open"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(shot, ROOT / "docs" / "dashboard.png")
