"""Per-key throttling (429 + Retry-After) and the request size limit (413), in the error shape."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from apps.clients import auth
from apps.deliveries.models import Notification
from tests.factories import ApiKeyFactory
from tests.support.processes import free_port

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
}


def tiny_rate(rate: str) -> Any:
    return override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": rate}}
    )


@pytest.mark.django_db
def test_third_request_in_a_minute_is_429_with_retry_after(
    api: APIClient, demo: dict[str, object]
) -> None:
    with tiny_rate("2/min"):
        statuses = [api.get(URL).status_code for _ in range(2)]
        response = api.post(URL, BODY, format="json")

    assert statuses == [200, 200]
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_throttle_is_per_key(api: APIClient, demo: dict[str, object]) -> None:
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory.create_with_raw()[1]}")

    with tiny_rate("1/min"):
        assert api.get(URL).status_code == 200
        assert api.get(URL).status_code == 429
        assert other.get(URL).status_code == 200


@pytest.mark.django_db
def test_lowered_rate_still_answers_retry_after(api: APIClient, demo: dict[str, object]) -> None:
    with tiny_rate("5/min"):
        for _ in range(5):
            api.get(URL)
    # The window now holds more requests than the new rate allows (DRF's wait() says None).
    with tiny_rate("2/min"):
        response = api.get(URL)

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db
def test_oversized_body_is_413_in_error_shape_and_creates_nothing(
    api: APIClient, demo: dict[str, object]
) -> None:
    big = {**BODY, "variables": {"order_id": "A-1", "blob": "x" * 2_000_000}}

    response = api.post(URL, big, format="json")

    assert response.status_code == 413
    assert response.json() == {
        "code": "payload_too_large",
        "message": f"Request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
        "fields": {},
    }
    assert Notification.objects.count() == 0


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_body_just_under_the_limit_reaches_the_view(
    api: APIClient, demo: dict[str, object]
) -> None:
    body = json.dumps(BODY)
    assert len(body) <= 100

    response = api.post(URL, body, content_type="application/json")

    assert response.status_code == 202


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_body_without_content_length_is_still_limited(demo: dict[str, object]) -> None:
    """A chunked body (no Content-Length, as under ASGI) is measured by reading it."""
    from django.core.handlers.wsgi import WSGIRequest

    from apps.core.middleware import BodySizeLimitMiddleware

    raw = json.dumps({**BODY, "variables": {"blob": "x" * 200}}).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": URL,
        "wsgi.input": BytesIO(raw),
        "CONTENT_TYPE": "application/json",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    request = WSGIRequest(environ)
    request._stream = BytesIO(raw)  # what ASGI hands over: the whole body, no length

    reached: list[bytes] = []
    middleware = BodySizeLimitMiddleware(lambda r: reached.append(r.body) or None)  # type: ignore[arg-type,func-returns-value]
    response = middleware(request)

    assert response.status_code == 413
    assert reached == []

    small = json.dumps(BODY).encode()
    request = WSGIRequest({**environ, "wsgi.input": BytesIO(small)})
    request._stream = BytesIO(small)
    middleware(request)
    assert reached == [small]


def test_413_also_outside_drf_views() -> None:
    response = Client().generic(
        "POST", "/healthz", data=b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.django_db
def test_a_throttle_without_redis_serves_rather_than_fails(
    api: APIClient, demo: dict[str, object], settings: Any
) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    auth._key_bucket.cache_clear()
    try:
        with tiny_rate("1/min"):
            statuses = [api.get(URL).status_code for _ in range(3)]
    finally:
        auth._key_bucket.cache_clear()

    assert statuses == [200, 200, 200]
