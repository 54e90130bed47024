from __future__ import annotations

import pytest
import redis
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.clients import auth
from apps.clients.keycache import VerifiedKeys, verified_keys
from apps.clients.models import ApiKey
from apps.clients.services import api_keys_revoke
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.deliveries.services import NotificationRequest, notification_create
from tests.support.queues import queued_counts

URL = "/api/v1/notifications"
BODY = {"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": "A-1"}}


def assert_error_shape(body: dict[str, object], code: str) -> None:
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]


@pytest.mark.django_db
def test_no_key_is_401_and_nothing_created(demo: dict[str, object]) -> None:
    response = APIClient().post(URL, BODY, format="json")

    assert response.status_code == 401
    assert_error_shape(response.json(), "not_authenticated")
    assert Notification.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    ["Bearer nk_00000000_wrong", "Bearer not-a-key", "Bearer", "Basic dXNlcjpwdw=="],
)
def test_wrong_key_is_401(demo: dict[str, object], header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.post(URL, BODY, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_key_of_right_prefix_but_wrong_secret_is_401(
    api_key: tuple[object, str], demo: dict[str, object]
) -> None:
    raw = api_key[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw[:-4]}AAAA")

    response = client.post(URL, BODY, format="json")

    assert response.status_code == 401


@pytest.mark.django_db
def test_a_verified_key_is_remembered_but_a_revoked_one_stops_at_once(
    api: APIClient,
    api_key: tuple[ApiKey, str],
    demo: dict[str, object],
) -> None:
    with CaptureQueriesContext(connection) as first:
        assert api.get(URL).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert api.get(URL).status_code == 200
    # no key lookup the second time, nor the key's last-use write (at most once a minute)
    assert len(second) == len(first) - 2
    assert not any("clients_apikey" in q["sql"] for q in second.captured_queries)
    # a wrong secret with the same prefix is not served from what was remembered
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1][:-4]}AAAA")
    assert other.get(URL).status_code == 401

    api_keys_revoke(keys=[api_key[0]])

    assert api.get(URL).status_code == 401


@pytest.mark.django_db
def test_authentication_does_not_remember_a_key_revoked_while_it_was_checked(
    api: APIClient, demo: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_compare = auth.hmac.compare_digest

    def revoked_meanwhile(a: str, b: str) -> bool:
        verified_keys.clear()  # what a revocation committing in another request does
        return real_compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", revoked_meanwhile)
    assert api.get(URL).status_code == 200  # the key was valid when it was read
    monkeypatch.setattr(auth.hmac, "compare_digest", real_compare)

    with CaptureQueriesContext(connection) as second:
        assert api.get(URL).status_code == 200
    assert any("clients_apikey" in q["sql"] for q in second.captured_queries)  # read again


def test_a_key_read_before_a_revocation_is_not_remembered_after_it() -> None:
    cache = VerifiedKeys()
    seen = cache.generation()  # a request looks the key up...
    cache.clear()  # ...while the key is revoked
    cache.put("digest", ("client", "key"), generation=seen)  # type: ignore[arg-type]

    assert cache.get("digest") is None
    cache.put("digest", ("client", "key"), generation=cache.generation())  # type: ignore[arg-type]
    assert cache.get("digest") == ("client", "key")


@pytest.mark.django_db
def test_malformed_json_is_400_in_error_shape(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, data='{"recipient": "user-1", ', content_type="application/json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "parse_error")
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_missing_fields_are_400_naming_each_field(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, {"variables": {}}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert_error_shape(body, "invalid")
    assert set(body["fields"]) == {"template", "recipient"}
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_json_array_body_is_400(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, data="[1, 2]", content_type="application/json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")


@pytest.mark.django_db
def test_missing_variable_is_400_naming_it(api: APIClient, demo: dict[str, object]) -> None:
    response = api.post(URL, {**BODY, "variables": {}}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"variables": ["missing variable 'order_id'"]}
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_accepted_creates_queued_deliveries_and_enqueues_on_commit(
    api: APIClient, demo: dict[str, object], django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:  # type: ignore[operator]
        response = api.post(URL, {**BODY, "channels": ["email", "sms"]}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    assert [(d["channel"], d["status"]) for d in body["deliveries"]] == [
        ("email", "queued"),
        ("sms", "queued"),
    ]
    assert Delivery.objects.filter(status=DeliveryStatus.QUEUED).count() == 2
    assert len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
def test_nothing_is_queued_when_the_transaction_rolls_back(
    demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    request = NotificationRequest(
        recipients=["user-1"], template="order_shipped", variables={"order_id": "A-1"}
    )

    def create_then_fail() -> None:
        with transaction.atomic():
            notification_create(client=demo["client"], request=request)  # type: ignore[arg-type]
            raise RuntimeError("the caller's transaction fails after creating")

    with pytest.raises(RuntimeError):
        create_then_fail()

    assert Notification.objects.count() == 0
    assert _queued(clean_redis) == {}

    # The same call committed does publish: the zero above is not an accident.
    notification_create(client=demo["client"], request=request)  # type: ignore[arg-type]
    # (push is skipped: the recipient has no device)
    assert _queued(clean_redis) == {"email.normal": 1, "sms.normal": 1, "inapp.normal": 1}


def _all_queues() -> list[str]:
    from notifier.queues import ALL_QUEUES

    return ALL_QUEUES


def _queued(client: redis.Redis) -> dict[str, int]:
    return queued_counts(client)


@pytest.mark.django_db
def test_get_unknown_or_foreign_notification_is_404(
    api: APIClient, demo: dict[str, object]
) -> None:
    other = APIClient()
    from tests.factories import ApiKeyFactory

    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory.create_with_raw()[1]}")
    created = api.post(URL, BODY, format="json").json()

    assert other.get(f"{URL}/{created['id']}").status_code == 404
    assert api.get(f"{URL}/00000000-0000-0000-0000-000000000000").status_code == 404
    not_uuid = api.get(f"{URL}/not-a-uuid")
    assert not_uuid.status_code == 404
    assert_error_shape(not_uuid.json(), "not_found")
