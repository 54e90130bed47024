"""The A/B tables in Debian's headless Chromium: a copy test and send-time tests (one holdout; two,
so no verdict) on a template's change page and on its analytics page, each rendered whole (no
template syntax shown, no table spilling out of its box), the send-time ones without a Promote
button (`SCREENSHOTS_DIR=/some/dir` keeps the screenshots)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from apps.analytics.models import Rollup
from tests.admin.test_template_experiments_admin import ab_template
from tests.apps.analytics.test_experiments_holdouts import request
from tests.support.browser import STAFF_PASSWORD, admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed_both_tests() -> int:
    """A template with an email copy test (A/B), a send-time test's arms on sms (requests with a
    20% holdout) and on push (requests with 20% and 50%: no verdict), counted yesterday. Its
    id."""
    template = ab_template()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    for channel, variant, sent, opened in (
        ("email", "A", 400, 80),
        ("email", "B", 300, 90),
        ("sms", "immediate", 400, 80),
        ("sms", "best_time", 300, 90),
        ("push", "immediate", 400, 80),
        ("push", "best_time", 300, 90),
    ):
        Rollup.objects.create(
            hour=hour, client=template.client, template=template, channel=channel,
            variant=variant, provider="twilio", sent=sent, delivered=sent, opened=opened,
        )  # fmt: skip
    request(template, 20, ("sms", "immediate", hour), ("sms", "best_time", hour))
    request(template, 20, ("push", "immediate", hour))
    request(template, 50, ("push", "best_time", hour))
    return int(template.pk)


def assert_rendered_cleanly(page: Page, container: str) -> None:
    """No template syntax shown as text in the container (the template page's help texts show
    `{{ order_id }}` on purpose), and each A/B table within its width."""
    text = page.locator(container).inner_text()
    for syntax in ("{%", "%}", "{#", "#}", "{{"):
        assert syntax not in text
    box = page.locator(container).bounding_box()
    assert box is not None
    for table in page.locator(f"{container} table.experiment-results").all():
        expect(table).to_be_visible()
        inner = table.bounding_box()
        assert inner is not None
        assert inner["x"] >= box["x"] - 1
        assert inner["x"] + inner["width"] <= box["x"] + box["width"] + 1


def keep(shot: Path) -> None:
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SCREENSHOTS_DIR"):
        shutil.copy(shot, Path(os.environ["SCREENSHOTS_DIR"]) / shot.name)


def test_a_send_time_test_beside_a_copy_test_in_both_admin_pages(
    browser: Browser, live_server: object, tmp_path: Path
) -> None:
    User.objects.create_superuser("ops", "ops@example.com", STAFF_PASSWORD)
    pk = seed_both_tests()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    base = str(live_server)
    admin_login(page, base, "ops", STAFF_PASSWORD)

    # The template's change page: the three tests, Promote buttons for the copy test only
    page.goto(f"{base}/admin/templates/template/{pk}/change/")

    timing = page.locator("#experiment-send-time-sms")
    copy = page.locator("#experiment-email-en")
    expect(timing.locator("h3")).to_have_text("Send time: best_time vs immediate (sms)")
    expect(copy.locator("h3")).to_have_text("email/en (version 1)")
    expect(timing.locator("tr.experiment-label-best_time td").nth(1)).to_have_text("—")
    expect(timing.locator("tr.experiment-label-best_time td").nth(8)).to_contain_text("verdict: b")
    expect(timing.locator("button, form")).to_have_count(0)
    expect(timing.locator("p.help")).to_contain_text("(this range's: 20%)")
    # ...and push, over two holdouts: no verdict, and why
    mixed = page.locator("#experiment-send-time-push")
    expect(mixed.locator("tr.experiment-label-best_time td").nth(8)).to_contain_text(
        "verdict: not yet"
    )
    expect(mixed.locator(".experiment-mixed")).to_be_visible()
    expect(mixed.locator(".experiment-mixed")).to_contain_text("different holdouts (20%, 50%)")
    expect(copy.locator("button")).to_have_text(["Promote A", "Promote B"])
    expect(copy.locator("button").first).to_be_visible()
    assert_rendered_cleanly(page, "#template-experiments")
    page.screenshot(path=str(tmp_path / "experiments-template-page.png"), full_page=True)
    page.locator("#template-experiments").screenshot(
        path=str(tmp_path / "experiments-template.png")
    )

    # The analytics page of the template: the three tables, no button at all
    page.click("#template-analytics")

    expect(page.locator("h1")).to_have_text("Analytics: welcome")
    card = page.locator("#experiment")
    expect(card.locator("h3")).to_have_text(
        [
            "email/en (version 1)",
            "Send time: best_time vs immediate (push)",
            "Send time: best_time vs immediate (sms)",
        ]
    )
    expect(card.locator("button, form")).to_have_count(0)
    assert_rendered_cleanly(page, "#experiment")
    page.screenshot(path=str(tmp_path / "experiments-analytics-page.png"), full_page=True)
    card.screenshot(path=str(tmp_path / "experiments-analytics.png"))

    for shot in sorted(tmp_path.glob("experiments-*.png")):
        keep(shot)
