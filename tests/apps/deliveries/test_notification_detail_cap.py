"""A topic's notification (up to 100,000 deliveries): its page lists the first 100 with counts.
A notification to listed recipients (up to 1000) lists every delivery, as API.md promises. GET
/notifications/{id}/deliveries pages through every one of either."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.db.models import Count
from rest_framework.test import APIClient

from apps.deliveries.fanout import Step, fan_out_chunk
from apps.deliveries.models import Delivery
from apps.deliveries.selectors import DETAIL_DELIVERIES_MAX
from tests.factories import ApiKeyFactory, RecipientFactory, SubscriptionFactory, TopicFactory

URL = "/api/v1/notifications"
BODY = {"template": "order_shipped", "variables": {"order_id": "A-1"}, "channels": ["inapp"]}


def _notify(api: APIClient, demo: dict[str, Any], n: int) -> str:
    ids = [f"r{n}-{i}" for i in range(n)]
    for ext in ids:
        RecipientFactory(client=demo["client"], external_id=ext)
    response = api.post(URL, {**BODY, "recipients": ids}, format="json")
    assert response.status_code == 202, response.content
    return str(response.json()["id"])


def _notify_topic(api: APIClient, demo: dict[str, Any], n: int) -> str:
    """A topic of `n` subscribers notified, its fan-out run to the end in-process."""
    topic = TopicFactory(client=demo["client"], key=f"watchers-{n}")
    for i in range(n):
        SubscriptionFactory(
            topic=topic, recipient__client=demo["client"], recipient__external_id=f"t{n}-{i}"
        )
    response = api.post(URL, {**BODY, "topic": topic.key}, format="json")
    assert response.status_code == 202, response.content
    notification_id = str(response.json()["id"])
    while fan_out_chunk(notification_id=notification_id) is not Step.DONE:
        pass
    return notification_id


@pytest.mark.django_db
def test_a_big_topic_notification_lists_the_first_100_with_counts(
    api: APIClient, demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    notification_id = _notify_topic(api, demo, 150)
    Delivery.objects.filter(
        id__in=Delivery.objects.filter(notification_id=notification_id).values("id")[:7]
    ).update(status="cancelled")
    expected = dict(
        Delivery.objects.filter(notification_id=notification_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    assert expected == {"cancelled": 7, "queued": 143}

    shown = api.get(f"{URL}/{notification_id}")
    for response in (shown, api.post(f"{URL}/{notification_id}/cancel", format="json")):
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["deliveries"]) == DETAIL_DELIVERIES_MAX == 100
        assert body["deliveries_total"] == 150
        assert body["deliveries_truncated"] is True
        assert sum(body["delivery_counts"].values()) == 150
    # The counts are the database's: as they were before the cancel, all cancelled after it
    assert shown.json()["delivery_counts"] == expected
    assert api.get(f"{URL}/{notification_id}").json()["delivery_counts"] == {"cancelled": 150}


@pytest.mark.django_db
def test_a_bulk_notification_lists_every_delivery_in_its_usual_shape(
    api: APIClient, demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    # Given 150 listed recipients on two channels: 300 deliveries
    ids = [f"b-{i}" for i in range(150)]
    for ext in ids:
        RecipientFactory(client=demo["client"], external_id=ext)
    body = {**BODY, "recipients": ids, "channels": ["inapp", "email"]}
    notification_id = api.post(URL, body, format="json").json()["id"]

    # Then its page and the cancel's answer list all 300, without the topic's fields
    for response in (
        api.get(f"{URL}/{notification_id}"),
        api.post(f"{URL}/{notification_id}/cancel", format="json"),
    ):
        assert response.status_code == 200, response.content
        shown = response.json()
        assert len(shown["deliveries"]) == 300
        assert {d["id"] for d in shown["deliveries"]} == {
            str(i)
            for i in Delivery.objects.filter(notification_id=notification_id).values_list(
                "id", flat=True
            )
        }
        assert not {"delivery_counts", "deliveries_total", "deliveries_truncated"} & set(shown)


@pytest.mark.django_db
def test_a_small_notification_keeps_its_shape(api: APIClient, demo: dict[str, Any]) -> None:
    notification_id = _notify(api, demo, 3)

    body = api.get(f"{URL}/{notification_id}").json()

    assert len(body["deliveries"]) == 3
    assert not {"delivery_counts", "deliveries_total", "deliveries_truncated"} & set(body)


@pytest.mark.django_db
def test_the_deliveries_endpoint_pages_through_all_of_them(
    api: APIClient, demo: dict[str, Any]
) -> None:
    notification_id = _notify(api, demo, 150)
    seen: list[str] = []
    url: str | None = f"{URL}/{notification_id}/deliveries?limit=40"
    pages = 0
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [d["id"] for d in body["results"]]
        assert all("timeline" in d and "attempt_log" in d for d in body["results"])
        url = body["next"]
        pages += 1

    assert pages == 4
    assert len(seen) == len(set(seen)) == 150
    assert set(seen) == {
        str(i)
        for i in Delivery.objects.filter(notification_id=notification_id).values_list(
            "id", flat=True
        )
    }
    bad = api.get(f"{URL}/{notification_id}/deliveries?cursor=forged")
    assert bad.status_code == 400


@pytest.mark.django_db
def test_the_deliveries_endpoint_is_per_client(api: APIClient, demo: dict[str, Any]) -> None:
    notification_id = _notify(api, demo, 3)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory.create_with_raw()[1]}")

    assert other.get(f"{URL}/{notification_id}/deliveries").status_code == 404
    missing = f"{URL}/00000000-0000-0000-0000-000000000000/deliveries"
    assert api.get(missing).status_code == 404
    assert len(api.get(f"{URL}/{notification_id}/deliveries").json()["results"]) == 3


@pytest.mark.django_db
def test_admin_shows_counts_and_a_link_not_every_delivery(
    api: APIClient, demo: dict[str, Any]
) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    big, small = _notify(api, demo, 150), _notify(api, demo, 3)
    staff = Client()
    staff.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123456"))

    page = staff.get(f"/admin/deliveries/notification/{big}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "150 (queued: 150)" in html
    assert f"/admin/deliveries/delivery/?notification__id__exact={big}" in html
    assert "deliveries-TOTAL_FORMS" not in html  # no inline of 150 rows
    listed = staff.get(f"/admin/deliveries/delivery/?notification__id__exact={big}")
    assert listed.status_code == 200
    assert "150 deliveries" in listed.content.decode()

    small_page = staff.get(f"/admin/deliveries/notification/{small}/change/").content.decode()
    assert "deliveries-TOTAL_FORMS" in small_page
