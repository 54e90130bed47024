"""The bell element's one file: served where the docs say, and small."""

from __future__ import annotations

from pathlib import Path

from django.test import Client

import apps.inbox

BELL_JS = Path(apps.inbox.__file__).parent / "static" / "notifier" / "bell.js"
MAX_BYTES = 15 * 1024  # the budget: "under about 15 KB", unminified


def test_bell_js_stays_under_15_kb() -> None:
    size = BELL_JS.stat().st_size

    assert size < MAX_BYTES, f"bell.js is {size} bytes; the budget is {MAX_BYTES}"


def test_bell_js_is_served_at_static_notifier_bell_js() -> None:
    response = Client().get("/static/notifier/bell.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body == BELL_JS.read_bytes()
    assert b'customElements.define("notifier-bell"' in body
