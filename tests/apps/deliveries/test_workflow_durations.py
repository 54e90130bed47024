"""Durations at the API: a throttle's window, an escalation step's delay and a digest's window
read the same way (notifier/durations.py): ASCII digits only, sums allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import Digest, Notification
from tests.factories import comment_template

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/notifications"
ONE = "\uff11m"  # a fullwidth digit one and "m": `\d` matches it, int() reads 1
COMMENT: dict[str, Any] = {
    "recipient": "user-1",
    "template": "new_comment",
    "channels": ["email"],
    "variables": {"post_id": "p1", "post_title": "P", "author": "a", "text": "t"},
}
ORDER: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "channels": ["email"],
    "variables": {"order_id": "A-1"},
}


LONG = "999999d" * 1200  # its sum overflows a timedelta


@pytest.mark.parametrize(
    ("value", "problem"),
    [(ONE, "a duration such as"), (LONG, "a duration of at most 64 characters")],
)
@pytest.mark.parametrize(
    ("extra", "where"),
    [
        (lambda v: {"throttle": {"limit": 1, "window": v}}, ["throttle", "window"]),
        (
            lambda v: {"escalation": [{"after": v, "channels": ["sms"]}]},
            ["escalation", "escalation[0].after"],
        ),
        (lambda v: {"digest": {"window": v}}, ["digest"]),
    ],
)
def test_a_duration_in_other_digits_or_too_long_is_a_400_naming_it(
    api: APIClient,
    demo: dict[str, Any],
    value: str,
    problem: str,
    extra: Callable[[str], dict[str, Any]],
    where: list[str],
) -> None:
    response = api.post(URL, {**ORDER, **extra(value)}, format="json")

    assert response.status_code == 400, response.content
    fields: Any = response.json()["fields"]
    for part in where:
        fields = fields[part]
    assert problem in str(fields)
    assert Notification.objects.count() == 0


def test_a_digest_window_may_be_a_sum(api: APIClient, demo: dict[str, Any]) -> None:
    comment_template(demo["client"])

    response = api.post(URL, {**COMMENT, "digest": {"window": "1h30m"}}, format="json")

    assert response.status_code == 202, response.content
    window = Digest.objects.get()
    assert 5399 < (window.closes_at - window.opened_at).total_seconds() <= 5400
    assert Notification.objects.get().digest == {"window": "5400s", "key": "", "max_items": 50}
