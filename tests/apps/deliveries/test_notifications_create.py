"""POST /api/v1/notifications: validation, idempotency, bulk, send_at, fallback."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
import redis
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint
from tests.factories import ApiKeyFactory, RecipientFactory
from tests.support.queues import queued_counts, queued_delivery_counts, queued_delivery_ids

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
}


def many(recipients: list[str], **extra: Any) -> dict[str, Any]:
    body = {k: v for k, v in BODY.items() if k != "recipient"}
    return {**body, "recipients": recipients, **extra}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    assert body["message"]
    return body


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"recipients": "user-1", "recipient": None}, "recipients"),
        ({"variables": ["order_id"]}, "variables"),
        ({"channels": "email"}, "channels"),
        ({"channels": ["fax"]}, "channels"),
        ({"priority": "urgent"}, "priority"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"fallback": ["pigeon"]}, "fallback"),
        ({"template": 42}, "template"),
        ({"recipient": ["user-1"]}, "recipient"),
        # The preference API's and templates' category rule: a name it could not store again
        # would lock the recipient out of the preference centre after an unsubscribe.
        ({"category": "Weekly news"}, "category"),
        ({"category": "news\n"}, "category"),
        ({"category": " news"}, "category"),
        ({"category": "a/b"}, "category"),
        ({"category": ""}, "category"),
        ({"category": "x" * 51}, "category"),
        ({"category": 7}, "category"),
    ],
)
def test_wrong_type_is_400_naming_the_field(
    api: APIClient, demo: dict[str, object], patch: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**BODY, **patch}.items() if v is not None}

    response = api.post(URL, body, format="json")

    error = assert_error(response, 400, "invalid")
    assert field in error["fields"]
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_both_recipient_and_recipients_is_400(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, {**BODY, "recipients": ["user-1"]}, format="json")

    assert assert_error(response, 400, "invalid")["fields"] == {
        "recipient": ["give exactly one of 'recipient', 'recipients' or 'topic'"]
    }


@pytest.mark.django_db
def test_unknown_template_is_400(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, {**BODY, "template": "no_such_template"}, format="json")

    assert assert_error(response, 400, "invalid")["fields"] == {
        "template": ["unknown template 'no_such_template'"]
    }
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_another_clients_template_is_unknown(demo: dict[str, object]) -> None:
    other = APIClient()
    other_key = ApiKeyFactory.create_with_raw()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key[1]}")
    RecipientFactory(client=other_key[0].client, external_id="user-1")

    response = other.post(URL, BODY, format="json")

    assert "template" in assert_error(response, 400, "invalid")["fields"]


@pytest.mark.django_db
def test_unknown_recipients_in_a_strict_request_are_400_naming_them(
    api: APIClient, demo: dict[str, object]
) -> None:
    response = api.post(URL, many(["user-1", "ghost", "nobody"], strict=True), format="json")

    assert assert_error(response, 400, "invalid")["fields"] == {
        "recipients": ["unknown recipient 'ghost'", "unknown recipient 'nobody'"]
    }
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_unknown_single_recipient_is_400(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, {**BODY, "recipient": "ghost"}, format="json")

    assert "recipients" in assert_error(response, 400, "invalid")["fields"]


@pytest.mark.django_db
def test_more_than_1000_recipients_is_400(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, many([f"user-{i}" for i in range(1001)]), format="json")

    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"recipients": ["Ensure this field has no more than 1000 elements."]}
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_empty_recipients_is_400(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, many([]), format="json")

    assert "recipients" in assert_error(response, 400, "invalid")["fields"]


@pytest.mark.django_db
def test_missing_one_of_two_variables_names_only_that_one(
    api: APIClient, demo: dict[str, object]
) -> None:
    from tests.factories import TemplateFactory

    TemplateFactory(
        client=demo["client"],
        key="two_vars",
        variants=[{"channel": "email", "subject": "{{ a }}", "body": "{{ a }} {{ b }}"}],
    )

    response = api.post(
        URL, {"recipient": "user-1", "template": "two_vars", "variables": {"a": 1}}, format="json"
    )

    assert assert_error(response, 400, "invalid")["fields"] == {
        "variables": ["missing variable 'b'"]
    }


@pytest.mark.django_db
def test_recipient_token_is_the_wrong_kind_of_auth(demo: dict[str, object]) -> None:
    token = recipient_token_mint(recipient=demo["recipient"])  # type: ignore[arg-type]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Recipient {token.token}")

    response = client.post(URL, BODY, format="json")

    assert_error(response, 403, "permission_denied")
    assert Notification.objects.count() == 0
    assert_error(client.get(URL), 403, "permission_denied")


@pytest.mark.django_db
def test_channel_without_variant_is_400(api: APIClient, demo: dict[str, object]) -> None:
    from tests.factories import TemplateFactory

    TemplateFactory(
        client=demo["client"],
        key="email_only",
        variants=[{"channel": "email", "subject": "s", "body": "b"}],
    )

    response = api.post(
        URL, {"recipient": "user-1", "template": "email_only", "channels": ["sms"]}, format="json"
    )

    assert assert_error(response, 400, "invalid")["fields"] == {
        "channels": ["no sms variant in template 'email_only'"]
    }


# --- idempotency ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_same_body_returns_the_original_response(
    api: APIClient, demo: dict[str, object]
) -> None:
    first = api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-A-1")
    again = api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-A-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Notification.objects.count() == 1
    assert Delivery.objects.count() == 4


@pytest.mark.django_db
def test_key_in_body_and_in_header_are_the_same_key(
    api: APIClient, demo: dict[str, object]
) -> None:
    first = api.post(URL, {**BODY, "idempotency_key": "k-1"}, format="json")
    again = api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert again.json() == first.json()
    assert Notification.objects.get().idempotency_key == "k-1"


@pytest.mark.django_db
def test_same_key_other_body_is_409_and_creates_nothing(
    api: APIClient, demo: dict[str, object]
) -> None:
    api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-A-1")

    response = api.post(
        URL,
        {**BODY, "variables": {"order_id": "B-2"}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-A-1",
    )

    error = assert_error(response, 409, "conflict")
    assert error["fields"] == {"idempotency_key": ["reused with a different body"]}
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_client(api: APIClient, demo: dict[str, object]) -> None:
    other_key = ApiKeyFactory.create_with_raw()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key[1]}")
    from tests.factories import TemplateFactory

    RecipientFactory(client=other_key[0].client, external_id="user-1")
    TemplateFactory(client=other_key[0].client, key="order_shipped")

    mine = api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    theirs = other.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    assert Notification.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("header", "body_key"), [("   ", None), ("x" * 256, None), ("one", "two")])
def test_bad_idempotency_key_is_400(
    api: APIClient, demo: dict[str, object], header: str, body_key: str | None
) -> None:
    body = {**BODY, "idempotency_key": body_key} if body_key else BODY

    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=header)

    assert "idempotency_key" in assert_error(response, 400, "invalid")["fields"]
    assert Notification.objects.count() == 0


# --- bulk ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_1000_recipients_in_one_request_few_queries_one_publish_batch(
    api: APIClient,
    demo: dict[str, object],
    clean_redis: redis.Redis,
    django_assert_max_num_queries: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = demo["client"]
    Recipient.objects.bulk_create(
        Recipient(client=client, external_id=f"bulk-{i}", email=f"bulk-{i}@example.com")  # type: ignore[misc]
        for i in range(1000)
    )
    body = {
        "recipients": [f"bulk-{i}" for i in range(1000)],
        "template": "order_shipped",
        "variables": {"order_id": "A-1"},
        "channels": ["email", "inapp"],
    }

    started = time.perf_counter()
    with django_assert_max_num_queries(20):
        response = api.post(URL, body, format="json")
    elapsed = time.perf_counter() - started

    assert response.status_code == 202
    assert set(response.json()) == {"id", "status"}
    notification = Notification.objects.get()
    assert notification.recipient_count == 1000
    assert Delivery.objects.filter(status=DeliveryStatus.QUEUED).count() == 2000
    assert queued_delivery_counts(clean_redis) == {"email.normal": 1000, "inapp.normal": 1000}
    # SEND_BATCH_SIZE (50) deliveries per message, each delivery exactly once
    assert queued_counts(clean_redis) == {"email.normal": 20, "inapp.normal": 20}
    assert len({pk for ids in queued_delivery_ids(clean_redis).values() for pk in ids}) == 2000
    with capsys.disabled():
        print(f"\n[bulk] 1000 recipients x 2 channels accepted and published in {elapsed:.2f}s")


# --- send_at and fallback ------------------------------------------------------------------


@pytest.mark.django_db
def test_future_send_at_is_scheduled_and_not_queued(
    api: APIClient, demo: dict[str, object], django_capture_on_commit_callbacks: Any
) -> None:
    send_at = timezone.now() + dt.timedelta(hours=2)

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            URL, {**BODY, "channels": ["email"], "send_at": send_at.isoformat()}, format="json"
        )

    assert response.status_code == 202
    assert [d["status"] for d in response.json()["deliveries"]] == ["scheduled"]
    delivery = Delivery.objects.get()
    assert delivery.not_before == send_at
    assert callbacks == []


@pytest.mark.django_db
def test_past_send_at_is_sent_now(
    api: APIClient, demo: dict[str, object], django_capture_on_commit_callbacks: Any
) -> None:
    send_at = timezone.now() - dt.timedelta(days=1)

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            URL, {**BODY, "channels": ["email"], "send_at": send_at.isoformat()}, format="json"
        )

    assert [d["status"] for d in response.json()["deliveries"]] == ["queued"]
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_fallback_is_stored_and_left_out_of_default_channels(
    api: APIClient, demo: dict[str, object]
) -> None:
    response = api.post(URL, {**BODY, "fallback": ["sms"]}, format="json")

    assert response.status_code == 202
    notification = Notification.objects.get()
    assert notification.fallback == ["sms"]
    assert sorted(notification.channels) == ["email", "inapp", "push"]
    assert sorted(d["channel"] for d in response.json()["deliveries"]) == [
        "email",
        "inapp",
        "push",
    ]


@pytest.mark.django_db
def test_fallback_also_in_channels_is_400(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(
        URL, {**BODY, "channels": ["email", "sms"], "fallback": ["sms"]}, format="json"
    )

    assert assert_error(response, 400, "invalid")["fields"] == {
        "fallback": ["sms is already in channels"]
    }
