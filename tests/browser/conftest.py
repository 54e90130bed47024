"""The browser the page tests drive: Debian's headless Chromium (tests/support/browser.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Browser, Page
from rest_framework.test import APIClient

from apps.templates.models import Template
from tests.factories import TemplateFactory
from tests.support.asgi import AsgiServer
from tests.support.browser import STAFF_PASSWORD, admin_login, chromium
from tests.support.processes import Worker


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


@pytest.fixture
def seeded(worker: Worker) -> dict[str, Any]:
    """What `make run` seeds: the demo client and key, recipient `demo-user`, template welcome."""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return dict(json.loads(out.getvalue().strip().splitlines()[-1]))


@pytest.fixture
def demo_api(seeded: dict[str, Any]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {seeded['api_key']}")
    return client
