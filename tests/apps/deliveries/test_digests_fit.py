"""A full digest must still render within its channel's limits (push, SMS, in-app: 4 KiB): at
close the oldest items are left out until it fits, `count` stays the number joined and `shown`
says how many are listed. Before, such a digest died at its render and every item was lost."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.deliveries.compose import delivery_message
from apps.deliveries.digests import digest_close
from apps.deliveries.models import Digest
from tests.factories import comment_template

LISTING = "{% for item in items %}{{ item.author }}: {{ item.text }}\n{% endfor %}"
VARIANTS = [
    {"channel": "sms", "locale": "en", "body": LISTING + "{{ shown }} of {{ count }}"},
    {
        "channel": "inapp",
        "locale": "en",
        "title": "{{ count }} comments",
        "body": LISTING + "{{ shown }} of {{ count }}",
    },
]


@pytest.mark.django_db
def test_a_digest_of_50_long_items_drops_the_oldest_to_fit_sms_and_inapp(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given 50 comments of 200 characters each (10 KiB listed) in SMS and in-app windows
    comment_template(demo["client"], digest={"window": "1h", "max_items": 50}, variants=VARIANTS)
    for n in range(50):
        response = api.post(
            "/api/v1/notifications",
            {
                "recipient": "user-1",
                "template": "new_comment",
                "channels": ["sms", "inapp"],
                "variables": {"author": f"a{n:02d}", "text": "x" * 200},
            },
            format="json",
        )
        assert response.status_code == 202, response.content

    for digest in Digest.objects.order_by("channel"):
        # When the window closes
        assert digest_close(digest_id=str(digest.pk), now=digest.closes_at) == "sent"
        digest.refresh_from_db()
        assert digest.delivery is not None
        variables = digest.delivery.notification.variables

        # Then the newest items that fit are listed, the count is all 50, and it renders
        shown = variables["shown"]
        assert 1 < shown < 50
        assert variables["count"] == 50
        assert [i["author"] for i in variables["items"]] == [
            f"a{n:02d}" for n in range(49, 49 - shown, -1)
        ]
        message = delivery_message(delivery=digest.delivery)
        assert message.body.endswith(f"{shown} of 50")
        size = len((message.title + message.body).encode())
        assert size <= settings.RENDER_MAX_TEXT_BYTES
        # and one more item would not have fitted
        assert size + len(f"a00: {'x' * 200}\n") > settings.RENDER_MAX_TEXT_BYTES
