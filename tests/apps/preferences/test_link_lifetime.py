"""Preference-centre links expire (PREFERENCES_LINK_MAX_AGE_SECONDS), unsubscribe links do not,
and neither kind of token reaches the logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone
from pythonjsonlogger.json import JsonFormatter
from rest_framework.test import APIClient

from apps.deliveries.compose import delivery_message
from apps.preferences.tokens import preferences_url, unsubscribe_url
from notifier.logcontext import MaskingFilter
from notifier.masking import mask_text
from tests.factories import DeliveryFactory, NotificationFactory, RecipientFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_a_preference_link_expires_and_an_unsubscribe_link_does_not(settings: Any) -> None:
    recipient = RecipientFactory()
    centre = _path(preferences_url(recipient=recipient))
    leave = _path(unsubscribe_url(recipient=recipient, category="news", channel="email"))
    settings.UNSUBSCRIBE_LINK_MAX_AGE_SECONDS = 0

    settings.PREFERENCES_LINK_MAX_AGE_SECONDS = 3600
    assert Client().get(centre).status_code == 200
    settings.PREFERENCES_LINK_MAX_AGE_SECONDS = -1  # anything older than "now" is too old
    assert Client().get(centre).status_code == 404
    assert Client().get(leave).status_code == 200


DAY = 24 * 3600


def _unsubscribe_path_issued(days_ago: int, recipient: Any) -> str:
    with mock.patch("django.core.signing.time.time", return_value=time.time() - days_ago * DAY):
        return _path(unsubscribe_url(recipient=recipient, category="news", channel="email"))


def _preference_links(page: bytes) -> list[str]:
    return re.findall(r'href="https?://[^"/]+(/preferences/[^"]+)"', page.decode())


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_old_unsubscribe_link_offers_no_preference_link(method: str, settings: Any) -> None:
    settings.PREFERENCES_LINK_MAX_AGE_SECONDS = 30 * DAY
    settings.UNSUBSCRIBE_LINK_MAX_AGE_SECONDS = 0
    leave = _unsubscribe_path_issued(31, RecipientFactory())

    response = getattr(Client(), method)(leave)

    assert response.status_code == 200  # the link still lets its reader leave
    assert _preference_links(response.content) == []


def test_an_unsubscribe_pages_preference_link_expires_with_the_emails_own(settings: Any) -> None:
    settings.PREFERENCES_LINK_MAX_AGE_SECONDS = 30 * DAY
    settings.UNSUBSCRIBE_LINK_MAX_AGE_SECONDS = 0
    leave = _unsubscribe_path_issued(29, RecipientFactory())

    (centre,) = _preference_links(Client().get(leave).content)

    assert Client().get(centre).status_code == 200
    # Dated when the unsubscribe link was issued (29 days ago), not when the page was shown.
    settings.PREFERENCES_LINK_MAX_AGE_SECONDS = 28 * DAY
    assert Client().get(centre).status_code == 404
    assert _preference_links(Client().get(leave).content) == []


def test_the_preferences_url_in_a_message_expires_like_the_apis(settings: Any) -> None:
    variants = [
        {"channel": "email", "locale": "en", "subject": "S", "body": "{{ preferences_url }}"}
    ]
    template = TemplateFactory(variants=variants, category="news")
    notification = NotificationFactory(client=template.client, template=template, category="news")
    link = delivery_message(delivery=DeliveryFactory(notification=notification)).body

    settings.PREFERENCES_LINK_MAX_AGE_SECONDS = -1

    assert Client().get(_path(link)).status_code == 404


def test_the_api_says_when_the_link_expires(
    api: APIClient, api_key: tuple[Any, str], settings: Any
) -> None:
    settings.PREFERENCES_LINK_MAX_AGE_SECONDS = 7 * 24 * 3600
    RecipientFactory(client=api_key[0].client, external_id="u-1")
    before = timezone.now()

    body = api.post("/api/v1/recipients/u-1/preferences-link").json()

    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    week = dt.timedelta(days=7)
    assert before + week <= expires_at <= timezone.now() + week


@pytest.mark.parametrize("kind", ["unsubscribe", "preferences"])
def test_link_tokens_are_redacted_from_django_request_warnings(kind: str) -> None:
    recipient = RecipientFactory()
    if kind == "preferences":
        url = preferences_url(recipient=recipient)
    else:
        url = unsubscribe_url(recipient=recipient, category="news", channel="email")
    path = _path(url) + "x"  # a bad token: a 404, which django.request logs as a warning
    token = path.rsplit("/", 1)[1]
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        assert Client().get(path).status_code == 404
    finally:
        logger.removeHandler(handler)

    (line,) = lines
    assert json.loads(line)["message"] == f"Not Found: {path.rsplit('/', 1)[0]}/***"
    assert token[:20] not in line


def test_link_tokens_are_masked_in_full_urls_too() -> None:
    text = "sent https://notify.example.com/u/eyJy:1x:sig and /preferences/eyJy:1x:sig?saved=1"

    assert mask_text(text) == ("sent https://notify.example.com/u/*** and /preferences/***?saved=1")
