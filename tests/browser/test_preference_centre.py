"""The hosted preference centre in headless Chromium on a phone-sized screen, served by uvicorn:
an opt-out saved there skips the next email of that category at creation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery
from apps.preferences.tokens import preferences_url
from apps.recipients.models import Preference, Recipient
from tests.factories import RecipientFactory, TemplateFactory
from tests.support.asgi import AsgiServer
from tests.support.browser import block_other_hosts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site() -> Iterator[AsgiServer]:
    proc = AsgiServer(name="preferences")
    yield proc
    proc.stop()


@pytest.fixture
def recipient(api_key: tuple[Any, str]) -> Recipient:
    client = api_key[0].client
    TemplateFactory(client=client, key="weekly_news", category="news")
    TemplateFactory(client=client, key="password_reset", category="security")
    return RecipientFactory(client=client, external_id="ada")


def test_an_opt_out_saved_on_a_phone_skips_the_next_email_of_that_category(
    browser: Browser, site: AsgiServer, recipient: Recipient, api: APIClient, tmp_path: Path
) -> None:
    # Given the recipient's preference page on a 375 px wide phone, nothing from other hosts
    page = browser.new_page(viewport={"width": 375, "height": 812}, device_scale_factor=2)
    blocked = block_other_hosts(page)
    path = "/preferences/" + preferences_url(recipient=recipient).rsplit("/", 1)[1]
    page.goto(site.url + path)
    news_email = page.locator('input[name=receive][value="email/news"]')
    expect(news_email).to_be_checked()
    expect(page.locator('input[value="email/security"]')).to_be_disabled()  # critical: locked
    # The page fits the screen: nothing scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # docs/preferences.png is made with PREFERENCES_SCREENSHOT=docs/preferences.png.
    shot = os.environ.get("PREFERENCES_SCREENSHOT")
    page.screenshot(path=shot or str(tmp_path / "preferences-375.png"), full_page=True)

    # When they turn off news by email and save (a plain form POST, no script)
    news_email.uncheck()
    page.click("button[type=submit]")

    # Then the page says so and the preference is stored
    expect(page.get_by_role("status")).to_have_text("Your preferences are saved.")
    expect(page.locator('input[name=receive][value="email/news"]')).not_to_be_checked()
    assert Preference.objects.get(recipient=recipient).categories == {"news": {"email": False}}
    assert blocked == []

    # And the next news email is skipped when the notification is created, with the reason
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "ada",
            "template": "weekly_news",
            "variables": {"order_id": "N-1"},
            "channels": ["email", "sms"],
        },
        format="json",
    )
    assert response.status_code == 202
    deliveries = {d["channel"]: d for d in response.json()["deliveries"]}
    assert (deliveries["email"]["status"], deliveries["email"]["reason"]) == (
        "skipped",
        "opted out of news on email",
    )
    assert deliveries["sms"]["status"] == "queued"  # only email was turned off
    assert Delivery.objects.get(channel="email").status == "skipped"
