"""The analytics page in Debian's headless Chromium, as an operator reaches it: from a template's
admin page, then filtered to one channel (`UPDATE_SCREENSHOTS=1` writes the overall page to
docs/analytics-admin.png; `python -m scripts.screenshots` retakes it from `make run`)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect

from apps.analytics.models import Rollup
from apps.ops.analytics_demo import analytics_demo_seed
from tests.factories import TemplateFactory
from tests.support.browser import STAFF_PASSWORD, admin_login
from tests.support.processes import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_opens_a_templates_analytics_and_filters_a_channel(
    browser: Browser, live_server: object, tmp_path: Path
) -> None:
    User.objects.create_superuser("ops", "ops@example.com", STAFF_PASSWORD)
    template = TemplateFactory(key="welcome")
    analytics_demo_seed(template=template, days=30, now=timezone.now())
    # The page's default range: the 30 UTC days to today (the seed starts an hour before).
    first_day = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    shown = Rollup.objects.filter(channel="sms", hour__gte=first_day - dt.timedelta(days=29))
    sms_sent = sum(shown.values_list("sent", flat=True))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    base = str(live_server)
    admin_login(page, base, "ops", STAFF_PASSWORD)

    page.goto(f"{base}/admin/templates/template/{template.pk}/change/")
    page.click("#template-analytics")

    expect(page.locator("h1")).to_have_text("Analytics: welcome")
    charts = page.locator("#analytics-charts svg[role=img]")
    expect(charts).to_have_count(4)
    for i in range(4):
        expect(charts.nth(i)).to_be_visible()
    expect(page.locator("#per-day tbody tr")).to_have_count(30)  # the default: 30 days to today
    expect(page.locator("#per-channel tbody tr")).to_have_count(4)
    page.screenshot(path=str(tmp_path / "analytics.png"), full_page=True)

    page.select_option("#id_channel", "sms")
    page.click("#analytics-filters input[type=submit]")

    expect(page.locator("#per-channel tbody tr")).to_have_count(1)
    sms = page.locator("#per-channel tbody tr[data-key=sms] td")
    expect(sms.nth(2)).to_have_text(str(sms_sent))
    expect(page.locator("#analytics-scope")).to_contain_text("Template welcome of")
    expect(page.locator("#analytics-scope")).to_contain_text(", sms,")
    assert "template=" in page.url  # the filter keeps the template

    shot = tmp_path / "analytics.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 30_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(shot, ROOT / "docs" / "analytics-admin.png")
