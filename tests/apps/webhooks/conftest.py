"""Fixtures of the webhook tests: a real receiver on 127.0.0.1, API clients of two clients."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.webhooks.attempts import endpoint_breaker
from tests.factories import ApiKeyFactory
from tests.support.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def other_api() -> APIClient:
    """An API client of a second client (client B)."""
    _, raw = ApiKeyFactory.create_with_raw(name="client-b")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture(autouse=True)
def fresh_breakers(clean_redis: Any) -> Iterator[None]:
    """Each test's endpoints start with closed breakers (Redis db emptied, clients rebuilt)."""
    endpoint_breaker.cache_clear()
    yield
    endpoint_breaker.cache_clear()


@pytest.fixture
def resolving_to(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make every host name resolve to this address (as DNS would, through getaddrinfo); an
    address literal (Redis's, PostgreSQL's) still resolves to itself."""
    real = socket.getaddrinfo

    def point(address: str) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET

        def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                return [(family, socket.SOCK_STREAM, 6, "", (address, port or 443))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", fake)

    return point
