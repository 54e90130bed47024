"""Which origins the inbox WebSocket accepts, as settings say, and the check that guards it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.inbox.origins import check_websocket_origins, websocket_allowed_origins


def test_listed_origins_win_over_allowed_hosts(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["https://app.example"]

    assert websocket_allowed_origins() == ["https://app.example"]
    assert check_websocket_origins() == []


def test_allowed_hosts_serve_when_no_origin_is_listed(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["notifier.example"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = []

    assert websocket_allowed_origins() == ["notifier.example"]


def test_any_origin_is_an_error_outside_debug(settings: Any) -> None:
    settings.DEBUG = False
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["*"]

    with pytest.raises(ImproperlyConfigured, match="WEBSOCKET_ALLOWED_ORIGINS"):
        websocket_allowed_origins()
    assert [m.id for m in check_websocket_origins()] == ["inbox.E001"]


def test_development_may_allow_any_origin(settings: Any) -> None:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["*"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = []

    assert websocket_allowed_origins() == ["*"]
    assert check_websocket_origins() == []


@pytest.mark.django_db
def test_a_misconfigured_list_grants_no_cross_origin_call_and_fails_nothing(
    settings: Any, client: Any
) -> None:
    # `*` outside DEBUG (inbox.E001): the inbox answers as usual, with no CORS grant
    settings.DEBUG = False
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["*"]

    response = client.options(
        "/api/v1/inbox",
        HTTP_ORIGIN="https://app.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )

    assert response.status_code < 500
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.django_db
def test_a_subdomain_pattern_grants_its_subdomains_on_the_inbox_only(
    settings: Any, client: Any
) -> None:
    settings.WEBSOCKET_ALLOWED_ORIGINS = [".example.com"]

    def granted(origin: str, path: str = "/api/v1/inbox/unread-count") -> bool:
        response = client.get(path, HTTP_ORIGIN=origin)
        return response.headers.get("Access-Control-Allow-Origin") == origin

    assert granted("https://app.example.com")
    assert granted("https://example.com")
    assert not granted("https://example.com.evil.test")
    assert not granted("https://app.example.com", "/api/v1/recipients")
