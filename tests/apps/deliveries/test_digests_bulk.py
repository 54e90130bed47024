"""A bulk request to a digest template finds or opens every recipient's windows in a bounded
number of statements: the same for 5 recipients as for 60 (it was ~8 per recipient and channel:
4,009 for 500 recipients on two channels)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries import digest_windows
from apps.deliveries.models import Delivery, DeliveryStatus, Digest
from tests.factories import (
    RecipientFactory,
    comment_template,
)


def bulk(api: APIClient, recipients: list[str], n: int) -> int:
    body = {
        "recipients": recipients,
        "template": "new_comment",
        "channels": ["email", "inapp"],
        "variables": {"post_id": "p1", "post_title": "P", "author": f"a{n}", "text": "t"},
    }
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/notifications", body, format="json")
    assert response.status_code == 202, response.content
    return len(queries)


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["{{ post_id }}", "{{ recipient.name }}-{{ post_id }}"])
def test_a_bulk_digest_request_costs_the_same_statements_for_5_or_60_recipients(
    api: APIClient, demo: dict[str, Any], key: str
) -> None:
    client = demo["client"]
    comment_template(client, digest={"window": "1m", "key": key})
    small = [f"s{i}" for i in range(5)]
    large = [f"l{i}" for i in range(60)]
    for external_id in ["w0", *small, *large]:
        RecipientFactory(client=client, external_id=external_id, name=external_id)

    bulk(api, ["w0"], 0)  # the first request of a process fills caches (auth, templates)

    # When each group gets a comment opening its windows, then one joining them
    opening_small = bulk(api, small, 0)
    opening_large = bulk(api, large, 1)
    joining_small = bulk(api, small, 2)
    joining_large = bulk(api, large, 3)

    # Then the statement counts do not grow with the recipients
    assert opening_large == opening_small
    assert joining_large == joining_small
    assert opening_large <= 25
    assert Digest.objects.filter(closed_at__isnull=True).count() == 132
    assert Delivery.objects.filter(status=DeliveryStatus.DIGESTED).count() == 262


@pytest.mark.django_db
def test_a_key_rendering_past_its_limits_is_a_400_named_as_the_serializer_names_it(
    api: APIClient, demo: dict[str, Any]
) -> None:
    comment_template(demo["client"])
    body = {
        "recipient": "user-1",
        "template": "new_comment",
        "variables": {"post_id": "p", "post_title": "P", "author": "a", "text": "x" * 600},
        "digest": {"window": "1m", "key": "{{ text }}{{ text }}"},  # 1,200 bytes: over 1 KiB
    }

    response = api.post("/api/v1/notifications", body, format="json")

    assert response.status_code == 400
    fields = response.json()["fields"]
    assert list(fields) == ["digest"]
    assert fields["digest"][0].startswith("key: does not render: ")
    assert Digest.objects.count() == 0
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
def test_windows_closing_under_every_try_are_a_503_with_retry_after_and_nothing_is_created(
    api: APIClient, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a sweep that closes the window each time between the insert and the read
    comment_template(demo["client"], digest={"window": "1m", "key": "{{ post_id }}"})
    read = digest_windows._open_windows
    tries: list[int] = []

    def closed_first(targets: list[Any]) -> list[Digest]:
        tries.append(len(targets))
        Digest.objects.filter(closed_at__isnull=True).update(closed_at=timezone.now())
        return read(targets)

    monkeypatch.setattr(digest_windows, "_open_windows", closed_first)

    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "user-1",
            "template": "new_comment",
            "channels": ["email"],
            "variables": {"post_id": "p1", "post_title": "P", "author": "a", "text": "t"},
        },
        format="json",
    )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "unavailable"
    assert tries == [1] * digest_windows.TRIES
    assert not Digest.objects.exists()
    assert not Delivery.objects.exists()
