"""`<notifier-bell>` in a plain page (its script tag and the element, nothing else) with the
WebSocket blocked: it falls back to Server-Sent Events. Headless Chromium against a real uvicorn
process and a real Celery worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, Route, expect
from rest_framework.test import APIClient

from apps.inbox.models import InboxMessage
from apps.inbox.services import inbox_message_archive
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint
from tests.browser.test_bell import send
from tests.factories import RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.pipeline]

PLAIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Product</title></head>
<body><header><notifier-bell token="%s"></notifier-bell></header>
<script>
  window.expired = 0;
  document.addEventListener("notifier:token-expired", function () { window.expired += 1; });
</script>
<script src="/static/notifier/bell.js"></script></body></html>"""

# Every WebSocket the page opens goes to a closed port: it never opens, as behind a proxy that
# does not pass WebSockets.
BLOCK_WEBSOCKETS = """(() => {
  const Real = window.WebSocket;
  window.WebSocket = function () { return new Real("ws://127.0.0.1:9/"); };
})();"""


@pytest.fixture
def server(seeded: dict[str, Any]) -> Iterator[AsgiServer]:
    proc = AsgiServer(name="bell-element")
    yield proc
    proc.stop()


def plain_page(
    browser: Browser, server: AsgiServer, token: str
) -> tuple[Page, list[str], list[str]]:
    """The product's page, served from the notifier's origin; the URLs of the event streams and
    of the WebSockets it opens."""
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.add_init_script(BLOCK_WEBSOCKETS)

    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=PLAIN_PAGE % token)

    page.route(f"{server.url}/product", fulfil)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/inbox/stream" in r.url else None)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{server.url}/product")
    return page, streams, sockets


def demo_token() -> str:
    return recipient_token_mint(recipient=Recipient.objects.get(external_id="demo-user")).token


def server_unread(server: AsgiServer, token: str) -> int:
    """The unread count as the REST API reports it (not the element's own arithmetic)."""
    response = requests.get(
        f"{server.url}/api/v1/inbox/unread-count",
        headers={"Authorization": f"Recipient {token}"},
        timeout=10,
    )
    response.raise_for_status()
    return int(response.json()["count"])


def test_over_sse_only_live_badge_mark_read_archive_and_load_more(
    browser: Browser, server: AsgiServer, demo_api: APIClient
) -> None:
    # Given 24 stored messages (more than the bell's first page of 20)
    recipient = Recipient.objects.get(external_id="demo-user")
    stored = [
        InboxMessage.objects.create(recipient=recipient, title="Note", body=f"n{n}")
        for n in range(24)
    ]
    page, streams, sockets = plain_page(browser, server, demo_token())
    bell = page.locator("notifier-bell")
    badge = page.locator(".nb-badge")
    expect(bell).to_have_attribute("data-state", "live", timeout=15000)
    expect(bell).to_have_attribute("data-transport", "sse")
    expect(badge).to_have_attribute("data-count", "24")

    # When a message is sent through the API, it arrives over the stream
    delivery_id = send(demo_api, "A-7")
    expect(badge).to_have_attribute("data-count", "25", timeout=10000)
    page.locator(".nb-button").click()
    items = page.locator(".nb-item")
    expect(items).to_have_count(21)
    expect(items.first.locator(".nb-body")).to_have_text("Order A-7")

    # Load more: the 4 older ones, then no more
    page.locator(".nb-more").click()
    expect(items).to_have_count(25)
    expect(page.locator(".nb-more")).to_be_hidden()
    expect(items.last.locator(".nb-body")).to_have_text("n0")

    # Mark read
    items.first.locator(".nb-item-btn").click()
    expect(items.first).to_have_attribute("data-read", "true")
    expect(badge).to_have_attribute("data-count", "24")
    message = InboxMessage.objects.get(delivery_id=delivery_id)
    wait_until(lambda: InboxMessage.objects.filter(id=message.id, read_at__isnull=False).exists())

    # Archive the oldest (unread) one
    page.locator(f'.nb-item[data-id="{stored[0].id}"] .nb-archive').click()
    expect(items).to_have_count(24)
    expect(badge).to_have_attribute("data-count", "23")
    wait_until(
        lambda: InboxMessage.objects.filter(id=stored[0].id, archived_at__isnull=False).exists()
    )

    # The server's counts agree (pushed over the stream after the archive), and no socket was used
    expect(badge).to_have_attribute("data-count", str(server_unread(server, demo_token())))
    assert streams
    assert all("token=" in url for url in streams)
    assert sockets
    assert all(url == "ws://127.0.0.1:9/" for url in sockets)


def test_a_spent_token_fires_token_expired_and_a_new_one_reconnects(
    browser: Browser, server: AsgiServer, demo_api: APIClient
) -> None:
    page, _streams, _sockets = plain_page(browser, server, "not-a-token")
    bell = page.locator("notifier-bell")
    expect(bell).to_have_attribute("data-state", "expired", timeout=15000)
    assert page.evaluate("window.expired") == 1

    # The host page hands it a fresh token (the attribute; a property does the same)
    page.evaluate("t => { document.querySelector('notifier-bell').token = t; }", demo_token())

    expect(bell).to_have_attribute("data-state", "live", timeout=15000)
    expect(bell).to_have_attribute("data-transport", "sse")
    send(demo_api, "A-8")
    expect(page.locator(".nb-badge")).to_have_attribute("data-count", "1", timeout=10000)
    assert page.evaluate("window.expired") == 1


def test_load_more_works_when_every_loaded_message_was_archived(
    browser: Browser, server: AsgiServer
) -> None:
    recipient = Recipient.objects.get(external_id="demo-user")
    stored = [
        InboxMessage.objects.create(recipient=recipient, title="Note", body=f"n{n}")
        for n in range(24)
    ]
    page, _streams, _sockets = plain_page(browser, server, demo_token())
    expect(page.locator("notifier-bell")).to_have_attribute("data-state", "live", timeout=15000)
    page.locator(".nb-button").click()
    items = page.locator(".nb-item")
    expect(items).to_have_count(20)

    # Every message the bell loaded is archived elsewhere; the stream removes them all
    for message in stored[4:]:
        inbox_message_archive(recipient=recipient, message_id=message.id)
    expect(items).to_have_count(0, timeout=10000)

    # Load more still reaches the older ones
    page.locator(".nb-more").click()
    expect(items).to_have_count(4)
    expect(items.first.locator(".nb-body")).to_have_text("n3")


def test_unarchived_elsewhere_the_message_rejoins_the_list(
    browser: Browser, server: AsgiServer
) -> None:
    recipient = Recipient.objects.get(external_id="demo-user")
    message = InboxMessage.objects.create(recipient=recipient, title="Back", body="again")
    inbox_message_archive(recipient=recipient, message_id=message.id)
    page, _streams, _sockets = plain_page(browser, server, demo_token())
    expect(page.locator("notifier-bell")).to_have_attribute("data-state", "live", timeout=15000)
    page.locator(".nb-button").click()
    expect(page.locator(".nb-item")).to_have_count(0)

    inbox_message_archive(recipient=recipient, message_id=message.id, archived=False)

    expect(page.locator(f'.nb-item[data-id="{message.id}"]')).to_have_count(1, timeout=10000)
    expect(page.locator(".nb-badge")).to_have_attribute("data-count", "1")


def test_a_token_for_another_recipient_shows_only_that_recipients_inbox(
    browser: Browser, server: AsgiServer
) -> None:
    # Given the bell showing the demo user's message (a single-page app, signed in)
    demo = Recipient.objects.get(external_id="demo-user")
    theirs = InboxMessage.objects.create(recipient=demo, title="Demo's", body="private")
    other = RecipientFactory(client=demo.client)
    mine = InboxMessage.objects.create(recipient=other, title="Other's", body="own")
    InboxMessage.objects.create(recipient=other, title="Read", body="old", read_at=mine.created_at)
    page, _streams, _sockets = plain_page(browser, server, demo_token())
    bell = page.locator("notifier-bell")
    expect(bell).to_have_attribute("data-state", "live", timeout=15000)
    page.locator(".nb-button").click()
    expect(page.locator(f'.nb-item[data-id="{theirs.id}"]')).to_have_count(1)

    # When the page signs in another user (not because the old token expired)
    other_token = recipient_token_mint(recipient=other).token
    page.evaluate("t => { document.querySelector('notifier-bell').token = t; }", other_token)

    # Then only the other user's messages and count remain, and it stays live for them
    items = page.locator(".nb-item")
    expect(items).to_have_count(2, timeout=10000)
    expect(page.locator(f'.nb-item[data-id="{theirs.id}"]')).to_have_count(0)
    expect(page.locator(".nb-badge")).to_have_attribute(
        "data-count", str(server_unread(server, other_token))
    )
    expect(bell).to_have_attribute("data-state", "live", timeout=15000)
    assert page.evaluate("window.expired") == 0


def test_the_panel_is_accessible(browser: Browser, server: AsgiServer) -> None:
    recipient = Recipient.objects.get(external_id="demo-user")
    InboxMessage.objects.create(recipient=recipient, title="Shipped", body="b")
    page, _streams, _sockets = plain_page(browser, server, demo_token())
    button = page.locator(".nb-button")
    expect(button).to_have_attribute("aria-label", "Notifications, 1 unread", timeout=15000)
    expect(button).not_to_have_attribute("aria-haspopup", "true")
    expect(button).to_have_attribute("aria-controls", "nb-panel")

    button.click()
    expect(page.locator(".nb-panel")).to_be_visible()
    expect(page.locator(".nb-archive")).to_have_attribute("aria-label", "Archive: Shipped")
    page.keyboard.press("Escape")

    expect(page.locator(".nb-panel")).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
