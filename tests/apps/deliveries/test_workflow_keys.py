"""A throttle's or a digest's key with an unterminated or stray tag delimiter (`"{{ post_id "`):
Django's lexer reads it as text, so it would render literally and every notification would
share one counter or one window. Each place that takes a key refuses it with a 400 (or a form
error) naming the key: a request's `throttle` and `digest`, a template's (PUT), the admin form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.deliveries.models import Notification
from apps.templates.models import Template
from tests.factories import COMMENT_DIGEST_VARIANTS

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/notifications"
KEYS = ["{{ post_id ", "{{ x", "x }}", "p-{% if post_id", "{{ post_id }}%}", "{# note"]
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1", "post_id": "p1", "x": "1"},
    "channels": ["email"],
}


@pytest.mark.parametrize("key", KEYS)
def test_a_requests_throttle_key_with_a_stray_delimiter_is_a_400(
    api: APIClient, demo: dict[str, object], key: str
) -> None:
    throttle = {"limit": 1, "window": "10m", "key": key}

    response = api.post(URL, {**BODY, "throttle": throttle}, format="json")

    assert response.status_code == 400, response.content
    (message,) = response.json()["fields"]["throttle"]["key"]
    assert "unclosed or stray" in message
    assert Notification.objects.count() == 0


@pytest.mark.parametrize("key", KEYS)
def test_a_requests_digest_key_with_a_stray_delimiter_is_a_400(
    api: APIClient, demo: dict[str, object], key: str
) -> None:
    digest = {"window": "1m", "key": key}

    response = api.post(URL, {**BODY, "digest": digest}, format="json")

    assert response.status_code == 400, response.content
    (message,) = response.json()["fields"]["digest"]
    assert message.startswith("key: ")
    assert "unclosed or stray" in message
    assert Notification.objects.count() == 0


@pytest.mark.parametrize("part", ["throttle", "digest"])
def test_a_template_put_with_such_a_key_is_a_400_and_saves_nothing(
    api: APIClient, part: str
) -> None:
    workflow = (
        {"limit": 1, "window": "10m", "key": "{{ post_id "}
        if part == "throttle"
        else {"window": "1m", "key": "{{ post_id "}
    )
    body = {"category": "social", "variants": COMMENT_DIGEST_VARIANTS, part: workflow}

    response = api.put("/api/v1/templates/new_comment", body, format="json")

    assert response.status_code == 400, response.content
    assert "unclosed or stray" in json.dumps(response.json()["fields"][part])
    assert not Template.objects.filter(key="new_comment").exists()


def test_the_admin_form_refuses_such_a_throttle_key(demo: dict[str, Any]) -> None:
    browser = Client()
    browser.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    template = demo["template"]
    url = reverse("admin:templates_template_change", args=[template.pk])
    form = {
        "client": str(template.client_id),
        "key": template.key,
        "category": "orders",
        "default_priority": "normal",
        "variables": "[]",
        "variants": json.dumps([{"channel": "sms", "locale": "en", "body": "Hi"}]),
        "throttle": json.dumps({"limit": 1, "window": "10m", "key": "{{ order_id "}),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }

    response = browser.post(url, form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"throttle"}
    assert "unclosed or stray" in errors["throttle"][0]
    template.refresh_from_db()
    assert template.throttle is None
