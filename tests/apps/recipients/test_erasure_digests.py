"""Erasing a recipient takes their notifications out of open digest windows (nothing is sent to
them later), closes those windows empty and blanks every window's key (rendered from their
data)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.digests import digest_close
from apps.deliveries.models import Delivery, DeliveryStatus, Digest, Notification
from tests.factories import comment_template


@pytest.mark.django_db
def test_erasure_takes_digested_items_out_of_their_windows_and_blanks_the_keys(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given two comments in an open window keyed by the recipient's name, and a closed window
    comment_template(
        demo["client"], digest={"window": "1h", "key": "{{ recipient.name }}/{{ post_id }}"}
    )

    def comment(n: int, post: str) -> None:
        variables = {"post_id": post, "post_title": "P", "author": f"a{n}", "text": "t"}
        body = {"recipient": "user-1", "template": "new_comment", "variables": variables}
        response = api.post("/api/v1/notifications", {**body, "channels": ["email"]}, format="json")
        assert response.status_code == 202, response.content

    comment(0, "old")
    old = Digest.objects.get()
    assert digest_close(digest_id=str(old.pk), now=old.closes_at) == "sent"
    comment(1, "p1")
    comment(2, "p1")
    window = Digest.objects.get(closed_at__isnull=True)
    assert window.key == "Ada/p1"

    # When the recipient is erased
    assert api.delete("/api/v1/recipients/user-1").status_code == 204

    # Then their items left the window with the erasure reason, and it closed empty
    items = Delivery.objects.filter(digest=window).order_by("created_at")
    assert [(d.status, d.reason) for d in items] == [
        (DeliveryStatus.CANCELLED, "recipient erased"),
        (DeliveryStatus.CANCELLED, "recipient erased"),
    ]
    window.refresh_from_db()
    assert (window.outcome, window.item_count) == ("empty", 0)
    assert window.closed_at is not None
    # And no window keeps their name, and nothing more is sent
    assert set(Digest.objects.values_list("key", flat=True)) == {""}
    assert digest_close(digest_id=str(window.pk), now=timezone.now()) == ""
    assert Notification.objects.count() == 4  # three comments and the one digest sent before
