"""The bell page in headless Chromium against a real uvicorn process and a real Celery worker."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryStatus
from apps.inbox.models import InboxMessage
from apps.inbox.services import inbox_message_deliver
from apps.recipients.models import Recipient
from tests.factories import DeliveryFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import ROOT, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.pipeline]


@pytest.fixture
def server(seeded: dict[str, Any]) -> Iterator[AsgiServer]:
    # The demo page is served with DEBUG on (as under `make run`).
    proc = AsgiServer(env={"DJANGO_DEBUG": "1"}, name="bell")
    yield proc
    proc.stop()


def send(api: APIClient, order_id: str) -> str:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "demo-user",
            "template": "welcome",
            "variables": {"order_id": order_id},
            "channels": ["inapp"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return str(response.json()["deliveries"][0]["id"])


def open_bell(browser: Browser, server: AsgiServer) -> Page:
    page = browser.new_page(viewport={"width": 900, "height": 560})
    page.goto(f"{server.url}/demo/bell")
    expect(page.locator("#notifier-bell")).to_have_attribute("data-state", "live", timeout=15000)
    return page


def test_badge_goes_live_from_0_to_1_and_click_marks_read(
    browser: Browser, server: AsgiServer, demo_api: APIClient
) -> None:
    page = open_bell(browser, server)
    badge = page.locator(".nb-badge")
    expect(badge).to_have_attribute("data-count", "0")

    started = time.monotonic()
    delivery_id = send(demo_api, "A-1001")
    expect(badge).to_have_attribute("data-count", "1", timeout=2000)
    elapsed = time.monotonic() - started

    page.locator(".nb-button").click()
    item = page.locator(".nb-item").first
    expect(item).to_have_attribute("data-read", "false")
    expect(item.locator(".nb-title")).to_have_text("Order shipped")
    expect(item.locator(".nb-body")).to_have_text("Order A-1001")
    item.locator(".nb-item-btn").click()
    expect(item).to_have_attribute("data-read", "true")
    expect(badge).to_have_attribute("data-count", "0")

    assert elapsed < 2.0
    message = InboxMessage.objects.get(delivery_id=delivery_id)
    wait_until(lambda: InboxMessage.objects.filter(id=message.id, read_at__isnull=False).exists())
    wait_until(lambda: Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.READ).exists())
    token_client = APIClient()
    token = page.locator("#notifier-bell").get_attribute("token")
    token_client.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")
    assert token_client.get("/api/v1/inbox/unread-count").json() == {"count": 0}
    listed = token_client.get("/api/v1/inbox").json()["results"]
    assert [(m["id"], m["read"]) for m in listed] == [(message.id, True)]


def test_opening_the_bell_marks_its_messages_seen(
    browser: Browser, server: AsgiServer, demo_api: APIClient
) -> None:
    page = open_bell(browser, server)
    for order_id in ("A-1001", "A-1002"):
        send(demo_api, order_id)
    expect(page.locator(".nb-badge")).to_have_attribute("data-count", "2", timeout=10000)
    assert InboxMessage.objects.filter(seen_at__isnull=True).count() == 2

    page.locator(".nb-button").click()

    wait_until(lambda: not InboxMessage.objects.filter(seen_at__isnull=True).exists())
    assert InboxMessage.objects.filter(read_at__isnull=True).count() == 2  # seen, not read


def test_opening_the_bell_marks_only_the_messages_it_shows_seen(
    browser: Browser, server: AsgiServer, seeded: dict[str, Any]
) -> None:
    # Given 25 stored messages: the bell loads the newest 20
    recipient = Recipient.objects.get(external_id="demo-user")
    stored = [
        InboxMessage.objects.create(recipient=recipient, title="Note", body=f"n{n}")
        for n in range(25)
    ]
    page = open_bell(browser, server)
    expect(page.locator(".nb-badge")).to_have_attribute("data-count", "25", timeout=10000)

    # When it is opened
    page.locator(".nb-button").click()
    expect(page.locator(".nb-item")).to_have_count(20)

    # Then the 20 it shows are seen, the 5 older ones it never loaded are not
    shown = {m.id for m in stored[5:]}
    wait_until(
        lambda: (
            set(InboxMessage.objects.filter(seen_at__isnull=False).values_list("id", flat=True))
            == shown
        )
    )
    time.sleep(0.5)  # no later request marks more
    assert set(InboxMessage.objects.filter(seen_at__isnull=True).values_list("id", flat=True)) == {
        m.id for m in stored[:5]
    }


def test_mark_all_read_and_screenshot_of_the_open_bell(
    browser: Browser, server: AsgiServer, demo_api: APIClient
) -> None:
    page = open_bell(browser, server)
    badge = page.locator(".nb-badge")
    for order_id in ("A-1001", "A-1002", "A-1003"):
        send(demo_api, order_id)
    expect(badge).to_have_attribute("data-count", "3", timeout=10000)
    page.locator(".nb-button").click()
    expect(page.locator(".nb-item")).to_have_count(3)
    page.locator(".nb-item .nb-item-btn").last.click()  # the oldest one, read
    expect(badge).to_have_attribute("data-count", "2")
    # docs/bell.png is made with BELL_SCREENSHOT=docs/bell.png; plain runs leave docs/ alone.
    page.screenshot(path=str(ROOT / os.environ.get("BELL_SCREENSHOT", "var/bell.png")))

    page.locator(".nb-read-all").click()

    expect(badge).to_have_attribute("data-count", "0")
    expect(page.locator('.nb-item[data-read="false"]')).to_have_count(0)
    wait_until(lambda: not InboxMessage.objects.filter(read_at__isnull=True).exists())
    page.locator("#demo-send").click()  # the demo page's own button sends through the pipeline
    expect(badge).to_have_attribute("data-count", "1", timeout=10000)
    expect(page.locator(".nb-item")).to_have_count(4)


def test_reconnect_catches_up_with_since(
    browser: Browser, server: AsgiServer, demo_api: APIClient, seeded: dict[str, Any]
) -> None:
    page = open_bell(browser, server)
    send(demo_api, "A-1")
    expect(page.locator(".nb-badge")).to_have_attribute("data-count", "1", timeout=5000)
    urls: list[str] = []
    page.on("websocket", lambda ws: urls.append(ws.url))

    server.stop()
    expect(page.locator("#notifier-bell")).to_have_attribute("data-state", "offline")
    missed = [send(demo_api, "A-2"), send(demo_api, "A-3")]
    wait_until(
        lambda: Delivery.objects.filter(id__in=missed, status=DeliveryStatus.SENT).count() == 2,
        timeout=20,
    )
    restarted = AsgiServer(env={"DJANGO_DEBUG": "1"}, name="bell-again", port=server.port)
    try:
        expect(page.locator(".nb-badge")).to_have_attribute("data-count", "3", timeout=20000)
        page.locator(".nb-button").click()
        bodies = page.locator(".nb-item .nb-body").all_text_contents()
    finally:
        restarted.stop()

    assert bodies == ["Order A-3", "Order A-2", "Order A-1"]
    first_id = InboxMessage.objects.order_by("id").first()
    assert first_id is not None
    assert any(f"since={first_id.id}" in url for url in urls)


# --- gaps: channels-redis drops live messages past a channel's capacity, without a word ------


def drop_live_messages(settings: Any, drop: bool) -> None:
    """Capacity 0 in this process, the sender: the layer drops every message it publishes."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["capacity"] = 0 if drop else 100
    settings.CHANNEL_LAYERS = layers  # channels drops its cached layer on setting_changed


def deliver_to_demo_user(order_id: str) -> InboxMessage:
    """What the inapp worker does (store, then publish), from this process."""
    recipient = Recipient.objects.get(external_id="demo-user")
    delivery = DeliveryFactory(
        recipient=recipient, notification__client=recipient.client, channel="inapp"
    )
    return inbox_message_deliver(
        delivery_id=str(delivery.id),
        recipient_id=recipient.pk,
        title="Order shipped",
        body=f"Order {order_id}",
        data={},
    )


def shown_bodies(page: Page) -> list[str]:
    page.locator(".nb-button").click()
    return page.locator(".nb-item .nb-body").all_text_contents()


def test_a_live_message_after_dropped_ones_makes_the_bell_fetch_them(
    browser: Browser, seeded: dict[str, Any], settings: Any
) -> None:
    # No ping within the test: the live message's prev_id alone reveals the gap.
    server = AsgiServer(env={"DJANGO_DEBUG": "1", "INBOX_PING_SECONDS": "600"}, name="bell-gap")
    try:
        page = open_bell(browser, server)
        drop_live_messages(settings, True)
        for n in range(1, 6):
            deliver_to_demo_user(f"A-{n}")
        drop_live_messages(settings, False)
        deliver_to_demo_user("A-6")
        expect(page.locator(".nb-badge")).to_have_attribute("data-count", "6", timeout=10000)
        bodies = shown_bodies(page)
    finally:
        server.stop()

    assert bodies == [f"Order A-{n}" for n in range(6, 0, -1)]  # each once, newest first


def test_a_heartbeat_naming_a_newer_message_makes_the_bell_fetch_a_dropped_burst(
    browser: Browser, seeded: dict[str, Any], settings: Any
) -> None:
    server = AsgiServer(env={"DJANGO_DEBUG": "1", "INBOX_PING_SECONDS": "0.5"}, name="bell-ping")
    try:
        page = open_bell(browser, server)
        expect(page.locator(".nb-badge")).to_have_attribute("data-count", "0")
        drop_live_messages(settings, True)
        for n in range(1, 9):
            deliver_to_demo_user(f"B-{n}")
        expect(page.locator(".nb-badge")).to_have_attribute("data-count", "8", timeout=10000)
        bodies = shown_bodies(page)
    finally:
        server.stop()

    assert bodies == [f"Order B-{n}" for n in range(8, 0, -1)]
