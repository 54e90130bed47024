"""Bad throttles are 400s naming the part, on a notification and on a template, and a key
that does not render with the request's variables takes no slot."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from apps.deliveries.models import Notification
from tests.apps.deliveries.test_throttles import BODY, URL

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("throttle", "field"),
    [
        ({"limit": 0, "window": "10m"}, "limit"),
        ({"limit": 1, "window": "ten minutes"}, "window"),
        ({"limit": 1, "window": "0s"}, "window"),
        ({"limit": 1, "window": "10m", "key": "{% for %}"}, "key"),
        ({"limit": 1, "window": "10m", "keys": "x"}, "throttle"),
        ("1/10m", "throttle"),
        (True, "throttle"),
    ],
)
def test_bad_throttles_are_400_naming_the_part(
    api: APIClient, demo: dict[str, object], throttle: Any, field: str
) -> None:
    response = api.post(URL, {**BODY, "throttle": throttle}, format="json")

    assert response.status_code == 400, response.content
    fields = response.json()["fields"]["throttle"]
    assert field in fields, fields
    assert Notification.objects.count() == 0


def test_template_api_stores_and_shows_the_throttle(api: APIClient) -> None:
    body = {
        "variants": [{"channel": "sms", "body": "Reply in {{ thread_id }}"}],
        "throttle": {"limit": 3, "window": "1h30m", "key": "{{ thread_id }}"},
    }

    created = api.put("/api/v1/templates/replies", body, format="json")
    bad = api.put(
        "/api/v1/templates/replies",
        {**body, "throttle": {"limit": 1, "window": "x"}},
        format="json",
    )
    cleared = api.put("/api/v1/templates/replies", {"variants": body["variants"]}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["throttle"] == {"limit": 3, "window": "90m", "key": "{{ thread_id }}"}
    assert bad.status_code == 400
    assert "window" in bad.json()["fields"]["throttle"]
    assert cleared.json()["throttle"] is None


def test_a_key_that_does_not_render_with_the_variables_is_a_400(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # A loop over a long variable runs past the render limits only with these variables.
    key = "{% for a in order_id %}{% for b in order_id %}{{ a }}{% endfor %}{% endfor %}"
    response = api.post(
        URL,
        {
            **BODY,
            "channels": ["email"],
            "variables": {"order_id": "x" * 300},
            "throttle": {"limit": 1, "window": "1m", "key": key},
        },
        format="json",
    )

    assert response.status_code == 400, response.content
    assert "key" in response.json()["fields"]["throttle"]
    assert Notification.objects.count() == 0


def test_a_key_reading_a_variable_the_request_lacks_is_a_400_naming_the_key(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    throttle = {"limit": 1, "window": "1m", "key": "{{ order_id }}:{{ thread_id }}"}

    response = api.post(URL, {**BODY, "throttle": throttle}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["fields"]["throttle"]["key"] == ["missing variable 'thread_id'"]
    assert Notification.objects.count() == 0
    assert clean_redis.keys("notifier:throttle:*") == []
