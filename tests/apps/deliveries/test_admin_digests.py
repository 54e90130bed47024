"""The digest admin: an open window cannot be deleted (its items would be stranded) and its
page lists a bounded number of items, the newest."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from apps.deliveries import admin as deliveries_admin
from apps.deliveries.digests import digest_close
from apps.deliveries.models import Delivery, Digest
from tests.factories import comment_template


@pytest.mark.django_db
def test_an_open_window_cannot_be_deleted_and_lists_only_the_newest_items(
    api: APIClient, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    comment_template(demo["client"], digest={"window": "1h"})
    for n in range(3):
        variables = {"post_id": "p", "post_title": "P", "author": f"a{n}", "text": f"text-{n}"}
        body = {"recipient": "user-1", "template": "new_comment", "variables": variables}
        api.post("/api/v1/notifications", {**body, "channels": ["email"]}, format="json")
    digest = Digest.objects.get()
    staff = Client()
    staff.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123456"))
    monkeypatch.setattr(deliveries_admin, "DIGEST_ITEMS_SHOWN", 2)

    page = staff.get(f"/admin/deliveries/digest/{digest.pk}/change/")
    assert page.status_code == 200
    newest = list(Delivery.objects.filter(digest=digest).order_by("-created_at"))
    assert str(newest[0].pk) in page.text
    assert str(newest[1].pk) in page.text
    assert str(newest[2].pk) not in page.text

    assert staff.get(f"/admin/deliveries/digest/{digest.pk}/delete/").status_code == 403
    assert (
        staff.post(f"/admin/deliveries/digest/{digest.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Digest.objects.filter(pk=digest.pk).exists()

    # Once closed, it may be deleted like any history
    digest_close(digest_id=str(digest.pk), now=digest.closes_at)
    assert staff.get(f"/admin/deliveries/digest/{digest.pk}/delete/").status_code == 200
