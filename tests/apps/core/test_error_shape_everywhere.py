"""One error shape everywhere: every API endpoint in the URLconf, sent bad credentials and
malformed JSON, answers `{"code", "message", "fields"}` with the right status, never a 500.

The endpoints are discovered from the URLconf (so new ones are covered when they land); the
kind of credential each accepts is read from the OpenAPI schema generated from the same code.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.recipients.tokens import recipient_token_mint
from tests.factories import ApiKeyFactory, RecipientFactory

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
BODY_METHODS = {"post", "put", "patch"}
PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def api_operations() -> list[tuple[str, str, str]]:
    """(route as in the URLconf, schema path, method) for every API view method."""
    found = []
    for route, callback in _walk(get_resolver().url_patterns):
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if not route.startswith(API_PREFIX) or view is None:
            continue
        schema_path = "/" + PARAM.sub(lambda m: "{" + m.group(2) + "}", route)
        found += [(route, schema_path, m) for m in METHODS if hasattr(view, m)]
    return found


def concrete(route: str) -> str:
    """The route with each parameter filled with a value that names nothing."""

    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or "str"
        if converter == "uuid":
            return str(uuid.uuid4())
        if converter == "int":
            return "987654321"
        return "nobody-here"

    return "/" + PARAM.sub(fill, route)


OPERATIONS = api_operations()
BODY_OPERATIONS = [op for op in OPERATIONS if op[2] in BODY_METHODS]


@pytest.fixture(scope="module")
def security() -> dict[tuple[str, str], list[str]]:
    """(schema path, method) -> the auth schemes the operation accepts."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (path, method): [name for alt in op.get("security", []) for name in alt]
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


@pytest.fixture
def credentials(db: None) -> dict[str, str]:
    key, raw = ApiKeyFactory.create_with_raw(is_ops=True)
    recipient = RecipientFactory(client=key.client)
    return {
        "Bearer": f"Bearer {raw}",
        "Recipient": f"Recipient {recipient_token_mint(recipient=recipient).token}",
    }


def assert_shape(response: Any, *, allowed: set[int], code: str | None = None) -> None:
    assert response.status_code in allowed, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "message", "fields"}, body
    assert isinstance(body["code"], str)
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["fields"], dict)
    if code is not None:
        assert body["code"] == code, body


def call(client: APIClient, method: str, url: str, **kwargs: Any) -> Any:
    return getattr(client, method)(url, **kwargs)


def test_the_api_has_endpoints_to_walk() -> None:
    routes = {route for route, _, _ in OPERATIONS}
    assert "api/v1/notifications" in routes
    assert len(OPERATIONS) >= 5


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "schema_path", "method"), OPERATIONS)
def test_without_or_with_bad_credentials_is_401(route: str, schema_path: str, method: str) -> None:
    url = concrete(route)
    for header in (None, "Bearer nk_00000000_wrong", "Bearer", "Basic dXNlcjpwdw==", "Recipient x"):
        client = APIClient()
        if header:
            client.credentials(HTTP_AUTHORIZATION=header)

        response = call(client, method, url)

        assert_shape(response, allowed={401})
        assert response["WWW-Authenticate"] in {"Bearer", "Recipient"}


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "schema_path", "method"), OPERATIONS)
def test_the_wrong_kind_of_credential_is_403(
    route: str,
    schema_path: str,
    method: str,
    security: dict[tuple[str, str], list[str]],
    credentials: dict[str, str],
) -> None:
    accepted = security[(schema_path, method)]
    assert accepted, f"{method.upper()} {schema_path} documents no auth scheme"
    for kind in set(credentials) - set(accepted):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=credentials[kind])

        response = call(client, method, concrete(route))

        assert_shape(response, allowed={403}, code="permission_denied")


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "schema_path", "method"), BODY_OPERATIONS)
def test_malformed_json_is_a_400_or_404_in_the_error_shape(
    route: str,
    schema_path: str,
    method: str,
    security: dict[tuple[str, str], list[str]],
    credentials: dict[str, str],
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=credentials[security[(schema_path, method)][0]])

    for data in ('{"broken": ', "[1, 2", "\x00\xff", "nul"):
        response = call(client, method, concrete(route), data=data, content_type="application/json")

        assert response.status_code < 500
        if response.status_code == 400:
            assert_shape(response, allowed={400}, code="parse_error")
        else:
            assert_shape(response, allowed={404}, code="not_found")


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "schema_path", "method"), BODY_OPERATIONS)
def test_unsupported_media_type_is_415_in_the_error_shape(
    route: str,
    schema_path: str,
    method: str,
    security: dict[tuple[str, str], list[str]],
    credentials: dict[str, str],
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=credentials[security[(schema_path, method)][0]])

    response = call(client, method, concrete(route), data="a=1", content_type="text/plain")

    assert response.status_code < 500
    if response.status_code != 404:
        assert_shape(response, allowed={415}, code="unsupported_media_type")


@pytest.mark.django_db
def test_unknown_api_url_and_wrong_method_are_in_the_error_shape(
    credentials: dict[str, str],
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=credentials["Bearer"])

    assert_shape(client.get("/api/v1/no-such-thing"), allowed={404}, code="not_found")
    assert_shape(client.delete("/api/v1/notifications"), allowed={405}, code="method_not_allowed")
