"""The admin, the operator dashboard and the API docs in headless Chromium, served by uvicorn
as `make run` serves them (static files by WhiteNoise, nothing from another host)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from apps.templates.models import Template
from tests.factories import TemplateFactory
from tests.support.asgi import AsgiServer
from tests.support.browser import ADMIN_HEADER_BG, admin_login, block_other_hosts, chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-password"
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def template() -> Template:
    User.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    return TemplateFactory(key="order_shipped")


@pytest.fixture
def server(template: Template) -> Iterator[AsgiServer]:
    proc = AsgiServer(env={"DJANGO_DEBUG": "1"}, name="static-pages")
    yield proc
    proc.stop()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop on this thread; the ORM calls between page
    # actions are plain sync code, not concurrent with it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser, server: AsgiServer) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    admin_login(page, server.url, "ops", PASSWORD)
    return page


def computed(page: Page, selector: str, prop: str) -> str:
    return str(
        page.eval_on_selector(selector, f"e => getComputedStyle(e).getPropertyValue('{prop}')")
    )


def test_admin_index_template_page_and_dashboard_are_styled(
    page: Page, server: AsgiServer, template: Template
) -> None:
    pages = [
        "/admin/",
        f"/admin/templates/template/{template.pk}/change/",
        "/admin/dashboard/",
    ]
    for path in pages:
        page.goto(server.url + path)
        # Unstyled, the header is transparent and "Toggle theme" a 100+ px box.
        assert computed(page, "#header", "background-color") == ADMIN_HEADER_BG, path
        assert computed(page, "#header", "display") == "flex", path
        assert page.locator(".theme-toggle").bounding_box()["height"] < 40, path  # type: ignore[index]

    # The template page: the nav sidebar stands beside the form, not above it.
    page.goto(f"{server.url}/admin/templates/template/{template.pk}/change/")
    sidebar = page.locator("#nav-sidebar").bounding_box()
    form = page.locator("#content").bounding_box()
    assert sidebar is not None
    assert form is not None
    assert form["x"] >= sidebar["x"] + sidebar["width"]
    assert form["y"] < sidebar["y"] + sidebar["height"]


def static_urls(page: Page) -> set[str]:
    found = page.eval_on_selector_all(
        "link[href], script[src], img[src]", "els => els.map(e => e.href || e.src)"
    )
    return {url for url in found if "/static/" in url}


def test_every_static_file_the_admin_and_bell_pages_reference_answers_200(
    page: Page, server: AsgiServer, template: Template
) -> None:
    pages = [
        "/admin/",
        "/admin/templates/template/",
        f"/admin/templates/template/{template.pk}/change/",
        "/admin/templates/template/add/",
        "/admin/dashboard/",
        "/admin/deliveries/delivery/",
        "/demo/bell",
        "/api/docs/",
        "/api/redoc/",
    ]
    referenced: dict[str, str] = {}
    for path in pages:
        page.goto(server.url + path)
        referenced.update(dict.fromkeys(static_urls(page), path))

    statuses = {url: page.request.get(url).status for url in referenced}

    assert {url: status for url, status in statuses.items() if status != 200} == {}
    assert any(url.endswith("/static/admin/css/base.css") for url in statuses)
    assert any("drf_spectacular_sidecar/swagger-ui-dist/" in url for url in statuses)
    assert any("drf_spectacular_sidecar/redoc/" in url for url in statuses)


def operations_count(server: AsgiServer) -> int:
    with urllib.request.urlopen(f"{server.url}/api/schema/?format=json") as response:  # noqa: S310
        schema: dict[str, Any] = json.loads(response.read())
    return sum(len(HTTP_METHODS & set(ops)) for ops in schema["paths"].values())


def test_api_docs_list_every_operation_with_other_hosts_blocked(
    browser: Browser, server: AsgiServer
) -> None:
    expected = operations_count(server)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = block_other_hosts(page)

    page.goto(f"{server.url}/api/docs/")
    expect(page.locator(".opblock-summary")).to_have_count(expected, timeout=15000)
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/notifications").first
    ).to_be_visible()
    page.goto(f"{server.url}/api/redoc/")
    expect(page.locator('[data-section-id^="operation/"]')).to_have_count(expected, timeout=15000)

    assert expected > 20
    assert blocked == []
