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
