"""Templates with loops, render limits and header safety at the API: 400 before anything is
stored or queued."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.deliveries.models import Delivery, Notification
from apps.templates.models import Template
from tests.apps.recipients.test_recipients_api import assert_error_shape
from tests.factories import RecipientFactory

TEMPLATES = "/api/v1/templates"
NOTIFICATIONS = "/api/v1/notifications"
ORDER_BODY = (
    "{% for item in items %}{{ item.name }} x {{ item.qty }}\n{% endfor %}Total {{ total }}"
)
THREE_DEEP = (
    "{% for a in rows %}{% for b in rows %}{% for c in rows %}{% if c < 0 %}{{ c }}{% endif %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


def save_template(api: APIClient, key: str, variants: list[dict[str, str]]) -> Any:
    return api.post(TEMPLATES, {"key": key, "variants": variants}, format="json")


def notify(api: APIClient, template: str, variables: dict[str, Any], **extra: Any) -> Any:
    body = {"recipient": "user-1", "template": template, "variables": variables, **extra}
    return api.post(NOTIFICATIONS, body, format="json")


@pytest.fixture
def recipient(api_key: tuple[ApiKey, str]) -> Any:
    return RecipientFactory(client=api_key[0].client, external_id="user-1", name="Ada")


@pytest.mark.django_db
def test_loop_template_requires_the_list_and_accepts_it(api: APIClient, recipient: Any) -> None:
    saved = save_template(
        api, "order", [{"channel": "email", "subject": "Order {{ id }}", "body": ORDER_BODY}]
    )
    items = [{"name": "Tea", "qty": 2}, {"name": "Cake", "qty": 1}]

    accepted = notify(api, "order", {"id": "A-1", "items": items, "total": "9.00"})

    assert saved.status_code == 201, saved.content
    assert saved.json()["required_variables"] == ["id", "items", "total"]
    assert accepted.status_code == 202, accepted.content


@pytest.mark.django_db
def test_loop_template_without_its_list_is_400_naming_it(api: APIClient, recipient: Any) -> None:
    save_template(api, "order", [{"channel": "sms", "body": ORDER_BODY}])

    missing = notify(api, "order", {"total": "9.00"})
    null = notify(api, "order", {"total": "9.00", "items": None})

    assert missing.status_code == 400
    assert_error_shape(missing.json(), "invalid")
    assert missing.json()["fields"] == {"variables": ["missing variable 'items'"]}
    assert null.status_code == 202  # present but null is allowed
    assert Notification.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source", ["{% debug %}", "{% if x %}{% debug %}{% endif %}", "{% lorem 99999 w %}"]
)
def test_debug_and_lorem_do_not_save(api: APIClient, source: str) -> None:
    response = save_template(api, "dump", [{"channel": "sms", "body": source}])

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "is not allowed" in response.json()["message"]
    assert set(response.json()["fields"]["variants"]["0"]) == {"body"}
    assert Template.objects.count() == 0


@pytest.mark.django_db
def test_static_text_over_the_channel_limit_does_not_save(api: APIClient) -> None:
    response = save_template(api, "long", [{"channel": "push", "title": "t", "body": "x" * 5000}])

    assert response.status_code == 400
    assert "exceeds the render limits" in response.json()["message"]
    assert set(response.json()["fields"]["variants"]["0"]) == {"body"}
    assert Template.objects.count() == 0


@pytest.mark.django_db
def test_three_deep_loop_over_100_items_is_400_fast(api: APIClient, recipient: Any) -> None:
    save_template(api, "cube", [{"channel": "inapp", "title": "Cube", "body": THREE_DEEP}])
    started = time.monotonic()

    response = notify(api, "cube", {"rows": list(range(100))})

    assert time.monotonic() - started < 3.0
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert set(response.json()["fields"]) == {"variables"}
    assert "iterations" in response.json()["message"]
    assert Notification.objects.count() == 0
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("variant", "variables"),
    [
        ({"channel": "sms", "body": "{{ text }}"}, {"text": "x" * 4097}),
        ({"channel": "push", "title": "{{ text }}", "body": "hi"}, {"text": "é" * 2100}),
        (
            {"channel": "email", "subject": "s", "body": "{% for r in rows %}{{ r }}{% endfor %}"},
            {"rows": ["y" * 1000] * 300},
        ),
        ({"channel": "sms", "body": "{{ x|ljust:width }}"}, {"x": "a", "width": 999_999_999}),
    ],
)
def test_template_fine_at_save_but_too_big_with_these_variables_is_400(
    api: APIClient, recipient: Any, variant: dict[str, str], variables: dict[str, Any]
) -> None:
    saved = save_template(api, "grows", [variant])

    response = notify(api, "grows", variables)

    assert saved.status_code == 201, saved.content
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"variables"}
    assert "exceeds the render limits" in response.json()["message"]
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_variables_just_within_the_limit_are_accepted(api: APIClient, recipient: Any) -> None:
    save_template(api, "fits", [{"channel": "sms", "body": "{{ text }}"}])

    assert notify(api, "fits", {"text": "x" * 4096}).status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize("subject", ["Order\r\nBcc: x@example.com", "Line\nbreak", "CR\ronly"])
def test_subject_with_a_line_break_does_not_save(api: APIClient, subject: str) -> None:
    response = save_template(api, "hdr", [{"channel": "email", "subject": subject, "body": "b"}])

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "variants": {"0": {"subject": ["contains a line break (CR or LF)"]}}
    }
    assert Template.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["A-1\r\nBcc: victim@example.com", "A-1\nX", "A-1\r"])
def test_variables_that_break_the_subject_line_are_400(
    api: APIClient, recipient: Any, value: str
) -> None:
    save_template(api, "hdr", [{"channel": "email", "subject": "Order {{ id }} now", "body": "b"}])

    response = notify(api, "hdr", {"id": value})

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert set(response.json()["fields"]) == {"variables"}
    assert "subject" in response.json()["message"]
    assert "line break" in response.json()["message"]
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_line_breaks_in_the_body_are_fine(api: APIClient, recipient: Any) -> None:
    save_template(api, "body", [{"channel": "email", "subject": "S", "body": "{{ id }}"}])

    assert notify(api, "body", {"id": "line\nbreak"}).status_code == 202


@pytest.mark.django_db
def test_a_fallback_channel_is_checked_too(api: APIClient, recipient: Any) -> None:
    save_template(
        api,
        "fb",
        [
            {"channel": "email", "subject": "s", "body": "{{ text }}"},
            {"channel": "sms", "body": "{{ text }}"},
        ],
    )

    response = notify(api, "fb", {"text": "x" * 5000}, channels=["email"], fallback=["sms"])

    assert response.status_code == 400
    assert "sms/en" in response.json()["message"]
    assert Notification.objects.count() == 0
