"""The admin, the operator dashboard and the API docs in headless Chromium, served by uvicorn
as `make run` serves them (static files by WhiteNoise, nothing from another host)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from apps.templates.models import Template
from tests.support.asgi import AsgiServer
from tests.support.browser import ADMIN_HEADER_BG, block_other_hosts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def computed(page: Page, selector: str, prop: str) -> str:
    return str(
        page.eval_on_selector(selector, f"e => getComputedStyle(e).getPropertyValue('{prop}')")
    )


def test_admin_index_template_page_and_dashboard_are_styled(
    staff_page: Page, staff_site: AsgiServer, template: Template
) -> None:
    pages = [
        "/admin/",
        f"/admin/templates/template/{template.pk}/change/",
        "/admin/dashboard/",
    ]
    for path in pages:
        staff_page.goto(staff_site.url + path)
        # Unstyled, the header is transparent and "Toggle theme" a 100+ px box.
        assert computed(staff_page, "#header", "background-color") == ADMIN_HEADER_BG, path
        assert computed(staff_page, "#header", "display") == "flex", path
        assert staff_page.locator(".theme-toggle").bounding_box()["height"] < 40, path  # type: ignore[index]

    # The template page: the nav sidebar stands beside the form, not above it.
    staff_page.goto(f"{staff_site.url}/admin/templates/template/{template.pk}/change/")
    sidebar = staff_page.locator("#nav-sidebar").bounding_box()
    form = staff_page.locator("#content").bounding_box()
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
    staff_page: Page, staff_site: AsgiServer, template: Template
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
        staff_page.goto(staff_site.url + path)
        referenced.update(dict.fromkeys(static_urls(staff_page), path))

    statuses = {url: staff_page.request.get(url).status for url in referenced}

    assert {url: status for url, status in statuses.items() if status != 200} == {}
    assert any(url.endswith("/static/admin/css/base.css") for url in statuses)
    assert any("drf_spectacular_sidecar/swagger-ui-dist/" in url for url in statuses)
    assert any("drf_spectacular_sidecar/redoc/" in url for url in statuses)


def operations_count(staff_site: AsgiServer) -> int:
    with urllib.request.urlopen(f"{staff_site.url}/api/schema/?format=json") as response:  # noqa: S310
        schema: dict[str, Any] = json.loads(response.read())
    return sum(len(HTTP_METHODS & set(ops)) for ops in schema["paths"].values())


def test_api_docs_list_every_operation_with_other_hosts_blocked(
    browser: Browser, staff_site: AsgiServer
) -> None:
    expected = operations_count(staff_site)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = block_other_hosts(page)

    page.goto(f"{staff_site.url}/api/docs/")
    expect(page.locator(".opblock-summary")).to_have_count(expected, timeout=15000)
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/notifications").first
    ).to_be_visible()
    page.goto(f"{staff_site.url}/api/redoc/")
    expect(page.locator('[data-section-id^="operation/"]')).to_have_count(expected, timeout=15000)

    assert expected > 20
    assert blocked == []
