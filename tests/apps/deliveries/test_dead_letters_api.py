"""Dead letters API: ops keys only, filters, cursor pagination, replay one and in bulk."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import DeadLetter, Delivery, DeliveryEvent, DeliveryStatus
from tests.factories import ApiKeyFactory, DeadLetterFactory, DeliveryFactory

pytestmark = [pytest.mark.django_db]

LIST = "/api/v1/dead-letters"
BULK = "/api/v1/dead-letters/replay"


@pytest.fixture
def ops() -> APIClient:
    _, raw = ApiKeyFactory.create_with_raw(is_ops=True, name="ops-team")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def dead(channel: str = "sms", reason: str = "twilio 503", attempts: int = 6) -> DeadLetter:
    delivery = DeliveryFactory(channel=channel, status=DeliveryStatus.DEAD, attempts=attempts)
    return DeadLetterFactory(delivery=delivery, channel=channel, reason=reason, attempts=attempts)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = dict(response.json())
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", LIST), ("post", f"{LIST}/1/replay"), ("post", BULK)],
)
def test_non_ops_key_is_403_and_nothing_replayed(api: APIClient, method: str, url: str) -> None:
    letter = dead()
    url = url.replace("/1/", f"/{letter.pk}/")

    response = getattr(api, method)(url, {"ids": [letter.pk]}, format="json")

    assert_error(response, 403, "permission_denied")
    letter.refresh_from_db()
    assert letter.replayed_at is None
    assert Delivery.objects.get(pk=letter.delivery_id).status == DeliveryStatus.DEAD


def test_no_key_is_401() -> None:
    assert_error(APIClient().get(LIST), 401, "not_authenticated")


def test_list_filters_by_channel_and_reason(ops: APIClient) -> None:
    sms_503 = dead("sms", "twilio 503")
    dead("sms", "twilio invalid number (21211)")
    dead("email", "sendgrid 503")

    response = ops.get(LIST, {"channel": "sms", "reason": "503"})

    assert response.status_code == 200
    body = response.json()
    assert [r["id"] for r in body["results"]] == [sms_503.pk]
    row = body["results"][0]
    assert row["delivery"] == str(sms_503.delivery_id)
    assert row["channel"] == "sms"
    assert row["delivery_status"] == "dead"
    assert row["replayed_at"] is None
    assert body["next"] is None


def test_list_is_cursor_paginated_newest_first(ops: APIClient) -> None:
    letters = [dead() for _ in range(5)]

    first = ops.get(LIST, {"limit": 2}).json()
    second = ops.get(first["next"]).json()
    third = ops.get(second["next"]).json()

    seen = [r["id"] for page in (first, second, third) for r in page["results"]]
    assert seen == [dl.pk for dl in reversed(letters)]
    assert third["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"cursor": "garbage"}, "cursor"),
        ({"replayed": "maybe"}, "replayed"),
    ],
)
def test_list_bad_query_is_400(ops: APIClient, params: dict[str, str], field: str) -> None:
    body = assert_error(ops.get(LIST, params), 400, "invalid")
    assert field in body["fields"]


def test_replay_requeues_with_fresh_attempts_and_records_who(
    ops: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    letter = dead(attempts=6)

    with django_capture_on_commit_callbacks() as callbacks:
        response = ops.post(f"{LIST}/{letter.pk}/replay")

    assert response.status_code == 200
    assert response.json()["replayed_by"] == "api:ops-team"
    assert response.json()["delivery_status"] == "queued"
    assert len(callbacks) == 1  # the send task is published after commit
    letter.refresh_from_db()
    assert letter.replayed_by == "api:ops-team"
    assert letter.replayed_at is not None
    delivery = Delivery.objects.get(pk=letter.delivery_id)
    assert delivery.status == DeliveryStatus.QUEUED
    assert delivery.attempts == 0
    assert delivery.reason == ""
    event = DeliveryEvent.objects.filter(delivery=delivery).latest("id")
    assert event.status == "queued"
    assert event.detail == f"replayed by api:ops-team (dead letter {letter.pk})"


def test_replaying_twice_is_409(ops: APIClient) -> None:
    letter = dead()
    assert ops.post(f"{LIST}/{letter.pk}/replay").status_code == 200

    assert_error(ops.post(f"{LIST}/{letter.pk}/replay"), 409, "conflict")


@pytest.mark.parametrize("pk", ["999999", "99999999999999999999"])
def test_replay_unknown_is_404(ops: APIClient, pk: str) -> None:
    assert_error(ops.post(f"{LIST}/{pk}/replay"), 404, "not_found")


def test_bulk_replay_by_ids(ops: APIClient) -> None:
    one, two, other = dead(), dead(), dead()
    ops.post(f"{LIST}/{two.pk}/replay")

    response = ops.post(BULK, {"ids": [one.pk, two.pk, 424242]}, format="json")

    assert response.status_code == 200
    assert response.json() == {"replayed": 1, "ids": [one.pk], "not_replayed": [two.pk, 424242]}
    assert Delivery.objects.get(pk=other.delivery_id).status == DeliveryStatus.DEAD


def test_bulk_replay_by_channel(ops: APIClient) -> None:
    sms = [dead("sms"), dead("sms")]
    email = dead("email")

    response = ops.post(BULK, {"channel": "sms"}, format="json")

    assert response.status_code == 200
    assert sorted(response.json()["ids"]) == sorted(dl.pk for dl in sms)
    statuses = {d.channel: d.status for d in Delivery.objects.all()}
    assert statuses == {"sms": "queued", "email": "dead"}
    assert DeadLetter.objects.get(pk=email.pk).replayed_at is None


def test_bulk_replay_out_of_range_id_is_400(ops: APIClient) -> None:
    body = assert_error(ops.post(BULK, {"ids": [2**63]}, format="json"), 400, "invalid")

    assert "ids" in body["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": [1], "channel": "sms"},
        {"ids": []},
        {"ids": ["x"]},
        {"channel": "fax"},
        [1, 2],
    ],
)
def test_bulk_replay_bad_body_is_400_and_nothing_replayed(ops: APIClient, body: Any) -> None:
    letter = dead()

    assert_error(ops.post(BULK, body, format="json"), 400, "invalid")
    assert DeadLetter.objects.get(pk=letter.pk).replayed_at is None
