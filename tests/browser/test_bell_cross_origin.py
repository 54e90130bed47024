"""`<notifier-bell>` on a product's own origin, talking to the notifier on another: the REST
calls and the event stream are cross-origin (CORS, allowed for WEBSOCKET_ALLOWED_ORIGINS on the
inbox API only), the WebSocket passes the Origin check. Headless Chromium enforces CORS against
a real uvicorn process; a real Celery worker delivers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect
from rest_framework.test import APIClient

from apps.inbox.models import InboxMessage
from tests.browser.test_bell import send
from tests.browser.test_bell_element import BLOCK_WEBSOCKETS, demo_token
from tests.support.asgi import AsgiServer
from tests.support.processes import wait_until
from tests.support.product_site import ProductSite

pytestmark = [pytest.mark.browser, pytest.mark.pipeline]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Product</title></head>
<body><header><notifier-bell server="%(server)s" token="%(token)s"></notifier-bell></header>
<script src="%(server)s/static/notifier/bell.js"></script></body></html>"""


@pytest.fixture
def product() -> Iterator[ProductSite]:
    site = ProductSite()
    yield site
    site.stop()


@pytest.fixture
def stranger() -> Iterator[ProductSite]:
    site = ProductSite()
    yield site
    site.stop()


@pytest.fixture
def server(seeded: dict[str, Any], product: ProductSite) -> Iterator[AsgiServer]:
    proc = AsgiServer(env={"WEBSOCKET_ALLOWED_ORIGINS": product.origin}, name="bell-cors")
    yield proc
    proc.stop()


def product_page(browser: Browser, server: AsgiServer, site: ProductSite, *, sse: bool) -> Page:
    site.page = PAGE % {"server": server.url, "token": demo_token()}
    page = browser.new_page()
    if sse:
        page.add_init_script(BLOCK_WEBSOCKETS)
    page.goto(f"{site.origin}/")
    return page


@pytest.mark.parametrize("sse", [False, True], ids=["websocket", "sse"])
def test_the_bell_on_an_allowed_origin_goes_live_and_marks_read_cross_origin(
    browser: Browser, server: AsgiServer, product: ProductSite, demo_api: APIClient, sse: bool
) -> None:
    page = product_page(browser, server, product, sse=sse)
    bell = page.locator("notifier-bell")
    expect(bell).to_have_attribute("data-state", "live", timeout=15000)
    expect(bell).to_have_attribute("data-transport", "sse" if sse else "websocket")

    # A message sent through the API arrives live; marking it read is a cross-origin POST
    delivery_id = send(demo_api, "X-1")
    badge = page.locator(".nb-badge")
    expect(badge).to_have_attribute("data-count", "1", timeout=10000)
    page.locator(".nb-button").click()
    page.locator(".nb-item").first.locator(".nb-item-btn").click()
    expect(badge).to_have_attribute("data-count", "0")
    wait_until(
        lambda: InboxMessage.objects.filter(delivery_id=delivery_id, read_at__isnull=False).exists()
    )


def test_a_page_of_another_origin_is_refused_by_the_browser(
    browser: Browser, server: AsgiServer, product: ProductSite, stranger: ProductSite
) -> None:
    page = product_page(browser, server, stranger, sse=True)
    expect(page.locator("notifier-bell")).not_to_have_attribute("data-state", "live", timeout=3000)
    # Its fetch with a stolen token fails in the browser (no CORS grant), where the same call
    # from the allowed origin succeeds
    call = """async ([url, token]) => {
      try {
        const r = await fetch(url, {headers: {Authorization: "Recipient " + token}});
        return r.status;
      } catch (e) { return "blocked"; }
    }"""
    args = [f"{server.url}/api/v1/inbox/unread-count", demo_token()]
    assert page.evaluate(call, args) == "blocked"
    allowed = product_page(browser, server, product, sse=True)
    assert allowed.evaluate(call, args) == 200


@pytest.mark.parametrize(
    ("origin", "path", "granted"),
    [
        ("product", "/api/v1/inbox", True),
        ("product", "/api/v1/inbox/7/read", True),
        ("stranger", "/api/v1/inbox", False),
        # Only the inbox answers cross-origin: the product API's keys stay server-side
        ("product", "/api/v1/notifications", False),
        ("null", "/api/v1/inbox", False),
        ("http://[bad", "/api/v1/inbox", False),
    ],
)
def test_preflight_grants_only_allowed_origins_on_the_inbox(
    server: AsgiServer,
    product: ProductSite,
    stranger: ProductSite,
    origin: str,
    path: str,
    granted: bool,
) -> None:
    origin = {"product": product.origin, "stranger": stranger.origin}.get(origin, origin)
    response = requests.options(
        f"{server.url}{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert response.status_code < 500
    allow = response.headers.get("Access-Control-Allow-Origin")
    assert (allow == origin) is granted, response.headers
    if granted:
        assert "authorization" in response.headers["Access-Control-Allow-Headers"]
