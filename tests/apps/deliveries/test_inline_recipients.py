"""Inline recipients in POST /api/v1/notifications: an object upserts the recipient in the
request's transaction; unknown ids in a bulk are skipped (reported), unless strict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.db import connection
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, Notification
from apps.deliveries.services import NotificationRequest
from apps.recipients.models import Recipient
from tests.factories import RecipientFactory
from tests.support.queues import queued_delivery_ids

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {"template": "order_shipped", "variables": {"order_id": "A-1"}}


def _post(api: APIClient, capture: Callable[..., Any], body: dict[str, Any]) -> Any:
    with capture(execute=True):
        return api.post(URL, {**BODY, **body}, format="json")


def _error_fields(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body: dict[str, Any] = response.json()
    assert body["code"] == "invalid"
    return dict(body["fields"])


@pytest.mark.django_db
def test_an_inline_recipient_is_created_and_sent_to(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    inline = {
        "id": "new-1",
        "email": "grace@example.com",
        "phone": "+1 415 555 2671",
        "locale": "pt-BR",
        "timezone": "America/Sao_Paulo",
        "name": "Grace",
        "data": {"plan": "pro"},
    }

    response = _post(api, django_capture_on_commit_callbacks, {"recipient": inline})

    assert response.status_code == 202, response.content
    created = Recipient.objects.get(client=demo["client"], external_id="new-1")
    assert (created.email, created.phone, created.locale, created.timezone) == (
        "grace@example.com",
        "+14155552671",  # normalised as PUT /recipients does
        "pt-BR",
        "America/Sao_Paulo",
    )
    assert (created.name, created.data) == ("Grace", {"plan": "pro"})
    body = response.json()
    assert {d["recipient"] for d in body["deliveries"]} == {"new-1"}
    assert "skipped" not in body
    queued = {i for ids in queued_delivery_ids(clean_redis).values() for i in ids}
    sent_to = Delivery.objects.filter(recipient=created, status="queued")
    assert queued == {str(d.id) for d in sent_to}
    assert {d.channel for d in sent_to} == {"email", "sms", "inapp"}  # push: no device


@pytest.mark.django_db
def test_an_inline_object_updates_only_the_fields_it_gives(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    before = demo["recipient"]

    response = _post(
        api,
        django_capture_on_commit_callbacks,
        {"recipient": {"id": "user-1", "email": "new@example.com"}, "channels": ["email"]},
    )

    assert response.status_code == 202, response.content
    after = Recipient.objects.get(pk=before.pk)
    assert (after.email, after.name, after.phone) == ("new@example.com", "Ada", before.phone)
    assert after.updated_at > before.updated_at


@pytest.mark.django_db
def test_a_bulk_mixes_ids_and_inline_objects(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    RecipientFactory(client=demo["client"], external_id="user-2")
    recipients = [
        "user-1",
        {"id": "new-1", "email": "a@example.com"},
        "user-2",
        {"id": "new-2", "email": "b@example.com", "name": "Bea"},
    ]

    response = _post(
        api, django_capture_on_commit_callbacks, {"recipients": recipients, "channels": ["email"]}
    )

    assert response.status_code == 202, response.content
    notification = Notification.objects.get(id=response.json()["id"])
    assert notification.recipient_count == 4
    assert sorted(notification.deliveries.values_list("recipient__external_id", flat=True)) == [
        "new-1",
        "new-2",
        "user-1",
        "user-2",
    ]
    assert Recipient.objects.get(client=demo["client"], external_id="new-2").name == "Bea"


@pytest.mark.django_db
def test_unknown_ids_in_a_bulk_are_skipped_and_reported(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    RecipientFactory(client=demo["client"], external_id="user-2")
    recipients = ["ghost", "user-1", {"id": "new-1", "email": "n@example.com"}, "user-2", "nobody"]

    response = _post(
        api, django_capture_on_commit_callbacks, {"recipients": recipients, "channels": ["email"]}
    )

    assert response.status_code == 202, response.content
    skipped = [
        {"recipient": "ghost", "reason": "unknown_recipient"},
        {"recipient": "nobody", "reason": "unknown_recipient"},
    ]
    assert response.json()["skipped"] == skipped
    assert not Recipient.objects.filter(external_id__in=["ghost", "nobody"]).exists()
    notification = Notification.objects.get(id=response.json()["id"])
    assert (notification.recipient_count, notification.skipped) == (3, skipped)
    deliveries = Delivery.objects.filter(notification=notification)
    assert sorted(d.recipient.external_id for d in deliveries) == ["new-1", "user-1", "user-2"]
    queued = {i for ids in queued_delivery_ids(clean_redis).values() for i in ids}
    assert queued == {str(d.id) for d in deliveries}
    detail = api.get(f"{URL}/{notification.id}").json()
    assert detail["skipped"] == skipped
    assert detail["recipient_count"] == 3


@pytest.mark.django_db
def test_a_strict_request_with_an_unknown_id_is_400_and_writes_nothing(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    recipients = ["user-1", {"id": "new-1", "email": "n@example.com"}, "ghost"]

    response = _post(
        api, django_capture_on_commit_callbacks, {"recipients": recipients, "strict": True}
    )

    assert _error_fields(response) == {"recipients": ["unknown recipient 'ghost'"]}
    assert Notification.objects.count() == 0
    assert not Recipient.objects.filter(external_id="new-1").exists()  # the upsert rolled back
    assert queued_delivery_ids(clean_redis) == {}


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"recipients": ["ghost", "nobody"]}, {"recipient": "ghost"}])
def test_no_known_recipient_at_all_is_400(
    api: APIClient,
    demo: dict[str, Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
    body: dict[str, Any],
) -> None:
    response = _post(api, django_capture_on_commit_callbacks, body)

    assert "recipients" in _error_fields(response)
    assert Notification.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipients": ["user-1", {"id": "n", "email": "not-an-email"}]}, "recipients[1].email"),
        ({"recipients": [{"id": "n", "phone": "+1555"}]}, "recipients[0].phone"),
        ({"recipients": ["user-1", "user-1", {"id": "n", "timezone": "Mars/Olympus"}]}, None),
        ({"recipient": {"id": "n", "locale": "not a locale!"}}, "recipient.locale"),
        ({"recipient": {"email": "a@example.com"}}, "recipient.id"),
        ({"recipients": [{"id": "n", "emial": "a@example.com"}]}, "recipients[0].emial"),
        ({"recipients": [{"id": "n", "data": ["not", "an", "object"]}]}, "recipients[0].data"),
        ({"recipients": [{"id": "x" * 201}]}, "recipients[0].id"),
        ({"recipients": [{"id": "n", "name": "A"}, {"id": "n", "name": "B"}]}, "recipients[1].id"),
        ({"recipients": ["user-1", "bell\x07id"]}, "recipients[1]"),
        ({"recipient": "zero\u200bwidth"}, "recipient"),
        # An id no path could reach afterwards (GET/PUT/DELETE /recipients/{id})
        ({"recipients": [{"id": "team/alice"}]}, "recipients[0].id"),
        ({"recipient": {"id": ".."}}, "recipient.id"),
    ],
)
def test_a_bad_inline_field_is_400_naming_index_and_field(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    django_capture_on_commit_callbacks: Callable[..., Any],
    body: dict[str, Any],
    field: str | None,
) -> None:
    response = _post(api, django_capture_on_commit_callbacks, body)

    fields = _error_fields(response)
    assert list(fields) == [field or "recipients[2].timezone"]
    assert all(isinstance(m, str) and m for m in fields[field or "recipients[2].timezone"])
    assert Notification.objects.count() == 0
    assert not Recipient.objects.filter(external_id="n").exists()
    assert queued_delivery_ids(clean_redis) == {}


@pytest.mark.django_db
def test_a_later_400_rolls_the_inline_upsert_back(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    response = _post(
        api,
        django_capture_on_commit_callbacks,
        {"recipient": {"id": "user-1", "name": "Changed"}, "variables": {}},
    )

    assert "variables" in _error_fields(response)
    assert Recipient.objects.get(external_id="user-1").name == "Ada"


@pytest.mark.django_db
def test_idempotency_covers_the_inline_fields(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    body = {"recipient": {"id": "new-1", "name": "Grace"}, "idempotency_key": "k-1"}
    first = _post(api, django_capture_on_commit_callbacks, body)
    again = _post(api, django_capture_on_commit_callbacks, body)
    other = _post(
        api, django_capture_on_commit_callbacks, {**body, "recipient": {"id": "new-1", "name": "X"}}
    )

    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 409)
    assert again.json() == first.json()
    assert Recipient.objects.get(external_id="new-1").name == "Grace"
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_plain_ids_keep_the_request_hash_they_had(demo: dict[str, Any]) -> None:
    """A replay of a request stored before inline recipients must still match its hash."""
    request = NotificationRequest(recipients=["user-1"], template="order_shipped")

    before_inline_recipients = "bcf4b8e7579a0921a647ded87dc14782aac56a2d15b696de1e376998949efcbe"

    assert request.fingerprint() == before_inline_recipients


@pytest.mark.django_db
def test_a_400_of_the_request_checks_creates_or_updates_no_recipient(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    before = Recipient.objects.values_list("external_id", "name", "updated_at").get(
        external_id="user-1"
    )
    recipients = [{"id": "user-1", "name": "Changed"}, {"id": "new-1", "email": "n@example.com"}]
    executed: list[str] = []

    with connection.execute_wrapper(
        lambda execute, sql, *a: executed.append(sql) or execute(sql, *a)
    ):
        response = _post(
            api, django_capture_on_commit_callbacks, {"recipients": recipients, "variables": {}}
        )

    assert "variables" in _error_fields(response)
    assert not [sql for sql in executed if "recipients_recipient" in sql]  # no upsert, no lock
    assert not Recipient.objects.filter(external_id="new-1").exists()
    after = Recipient.objects.values_list("external_id", "name", "updated_at").get(
        external_id="user-1"
    )
    assert after == before


@pytest.mark.django_db
def test_an_inline_id_without_fields_does_not_touch_an_existing_recipient(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    updated_at = Recipient.objects.get(external_id="user-1").updated_at
    recipients = [{"id": "user-1"}, {"id": "new-1", "name": "Grace"}, {"id": "new-2"}]

    response = _post(
        api, django_capture_on_commit_callbacks, {"recipients": recipients, "channels": ["inapp"]}
    )

    assert response.status_code == 202, response.content
    user = Recipient.objects.get(external_id="user-1")
    assert (user.name, user.updated_at) == ("Ada", updated_at)
    assert Recipient.objects.get(external_id="new-1").name == "Grace"
    assert Recipient.objects.get(external_id="new-2").name == ""


@pytest.mark.django_db
def test_unknown_ids_are_listed_as_skipped_deliveries_in_both_bodies(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    body = {"recipients": ["user-1", "ghost"], "channels": ["email", "inapp"]}

    response = _post(api, django_capture_on_commit_callbacks, body)

    assert response.status_code == 202, response.content
    skipped_deliveries = [
        {
            "id": None,
            "recipient": "ghost",
            "channel": channel,
            "status": "skipped",
            "reason": "unknown_recipient",
        }
        for channel in ("email", "inapp")
    ]
    accepted = response.json()
    rows = Delivery.objects.filter(notification_id=accepted["id"]).order_by("channel")
    assert [d["id"] for d in accepted["deliveries"][:2]] == [str(d.id) for d in rows]
    assert accepted["deliveries"][2:] == skipped_deliveries
    assert accepted["skipped"] == [{"recipient": "ghost", "reason": "unknown_recipient"}]
    detail = api.get(f"{URL}/{accepted['id']}").json()
    assert sorted(d["id"] for d in detail["deliveries"][:2]) == sorted(str(d.id) for d in rows)
    assert detail["deliveries"][2:] == skipped_deliveries
    # Not rows: the list's filters neither find nor trip over them.
    for query in ("recipient=ghost", "status=skipped", "recipient=ghost&channel=email"):
        listed = api.get(f"{URL}?{query}")
        assert (listed.status_code, listed.json()["results"]) == (200, []), query


@pytest.mark.django_db
def test_erasure_scrubs_an_id_skipped_before_the_recipient_existed(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    body = {"recipients": ["user-1", "carol-7"], "channels": ["email"]}
    skipped_then = _post(api, django_capture_on_commit_callbacks, body).json()["id"]
    _post(
        api,
        django_capture_on_commit_callbacks,
        {"recipient": {"id": "carol-7", "email": "c@example.com"}, "channels": ["email"]},
    )

    assert api.delete("/api/v1/recipients/carol-7").status_code == 204

    alias = Recipient.objects.get(client=demo["client"], erased_at__isnull=False).external_id
    notification = Notification.objects.get(id=skipped_then)
    assert notification.skipped == [{"recipient": alias, "reason": "unknown_recipient"}]
    assert notification.response["skipped"] == notification.skipped
    assert [d["recipient"] for d in notification.response["deliveries"]] == ["user-1", alias]
    assert "carol-7" not in str(api.get(f"{URL}/{skipped_then}").json())
    assert not Notification.objects.filter(response__icontains="carol-7").exists()


@pytest.mark.django_db
def test_the_skipped_column_has_a_database_default_for_the_previous_release() -> None:
    """A process still running the previous release inserts notifications without `skipped`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_name = 'deliveries_notification' AND column_name = 'skipped'"
        )
        [(default,)] = cursor.fetchall()

    assert default == "'[]'::jsonb"
