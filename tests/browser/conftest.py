"""The browser the page tests drive: Debian's headless Chromium (tests/support/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page

from apps.templates.models import Template
from tests.factories import TemplateFactory
from tests.support.asgi import AsgiServer
from tests.support.browser import STAFF_PASSWORD, admin_login, chromium


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop on this thread; the ORM calls between page
    # actions are plain sync code, not concurrent with it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        yield browser


@pytest.fixture
def template() -> Template:
    """A staff user `ops` (STAFF_PASSWORD) and a template with the four channels' variants."""
    User.objects.create_superuser("ops", "ops@example.com", STAFF_PASSWORD)
    return TemplateFactory(key="order_shipped")


@pytest.fixture
def staff_site(template: Template) -> Iterator[AsgiServer]:
    """The app under uvicorn as `make run` serves it (DEBUG on)."""
    proc = AsgiServer(env={"DJANGO_DEBUG": "1"}, name="staff-site")
    yield proc
    proc.stop()


@pytest.fixture
def staff_page(browser: Browser, staff_site: AsgiServer) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    admin_login(page, staff_site.url, "ops", STAFF_PASSWORD)
    return page
