"""Preference-centre links expire (PREFERENCES_LINK_MAX_AGE_SECONDS), unsubscribe links do not,
and neither kind of token reaches the logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

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
