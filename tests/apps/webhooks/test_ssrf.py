"""SSRF: in production settings an endpoint must be https and resolve to public addresses only,
checked at registration AND at each send against what the host resolves to then (DNS
rebinding: public when registered, private when sent), the send connecting to the address it
checked. Production refuses to start with WEBHOOKS_ALLOW_PRIVATE on."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from django.core.checks import run_checks
from rest_framework.test import APIClient

from apps.webhooks import transport
from apps.webhooks.addresses import UnsafeUrl, address_problem, target_for_send
from apps.webhooks.attempts import message_attempt
from apps.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint
from apps.webhooks.services import endpoint_ping
from apps.webhooks.signing import secret_new
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/webhook-endpoints"
PRIVATE = [
    "10.0.0.1",
    "169.254.169.254",
    "127.0.0.1",
    "192.168.1.10",
    "172.16.0.1",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address judged, not bound
    "224.0.1.1",
    "::1",
    "fd00::1",
    "fe80::1",
    "::ffff:10.0.0.1",
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo of 10.0.0.1
    "fec0::1",  # site-local
    "fec0:1:2::3",
]


@pytest.fixture
def production(settings: Any) -> Any:
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    return settings


@pytest.mark.parametrize("address", PRIVATE)
def test_every_private_or_special_address_is_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) != ""


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "2002:5db8:d822::1"])
def test_a_public_address_is_fine(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) == ""


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254"])
def test_registration_refuses_a_host_resolving_to_a_private_address(
    production: Any, api: APIClient, resolving_to: Callable[[str], None], address: str
) -> None:
    resolving_to(address)

    response = api.post(
        URL, {"url": "https://hooks.example.com/x", "events": ["delivery.sent"]}, format="json"
    )

    assert response.status_code == 400, response.content
    message = response.json()["fields"]["url"][0]
    assert f"resolves to {address}" in message
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://hooks.example.com/x", "https://10.0.0.1/x", "https://[::1]/x"]
)
def test_registration_refuses_http_and_private_literals(
    production: Any, api: APIClient, resolving_to: Callable[[str], None], url: str
) -> None:
    resolving_to("93.184.216.34")

    response = api.post(URL, {"url": url, "events": ["delivery.sent"]}, format="json")

    assert response.status_code == 400, response.content
    assert "url" in response.json()["fields"]


def test_registration_refuses_a_host_that_does_not_resolve(production: Any, api: APIClient) -> None:
    response = api.post(
        URL, {"url": "https://no-such-host.invalid/x", "events": ["delivery.sent"]}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "does not resolve" in response.json()["fields"]["url"][0]


def test_dns_rebinding_public_at_registration_private_at_send_is_refused_at_send(
    production: Any,
    api: APIClient,
    resolving_to: Callable[[str], None],
    receiver: Receiver,
) -> None:
    resolving_to("93.184.216.34")
    created = api.post(
        URL, {"url": "https://hooks.example.com/x", "events": ["delivery.sent"]}, format="json"
    )
    assert created.status_code == 201, created.content
    endpoint = WebhookEndpoint.objects.get(pk=created.json()["id"])
    message = endpoint_ping(endpoint=endpoint)
    # Then the name is re-pointed at the metadata service.
    resolving_to("169.254.169.254")

    assert message_attempt(message_id=message.pk) == "pending"

    attempt = WebhookAttempt.objects.get(message=message)
    assert attempt.ok is False
    assert attempt.status_code is None
    assert "refused" in attempt.error
    assert "169.254.169.254" in attempt.error
    assert receiver.received == []
    message.refresh_from_db()
    assert message.state == MessageStatus.PENDING


def test_the_send_connects_to_the_address_it_checked_keeping_the_host_name(
    production: Any, resolving_to: Callable[[str], None]
) -> None:
    resolving_to("93.184.216.34")

    target = target_for_send("https://hooks.example.com:8443/x?y=1")

    assert (target.host, target.port, target.addresses) == (
        "hooks.example.com",
        8443,
        ("93.184.216.34",),
    )


def test_one_private_address_among_public_ones_is_refused(
    production: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def two(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two)

    with pytest.raises(UnsafeUrl, match=r"10\.0\.0\.1"):
        target_for_send("https://hooks.example.com/x")


def test_production_refuses_to_start_with_private_webhooks_allowed(settings: Any) -> None:
    settings.REFUSE_UNSAFE_SETTINGS = True
    settings.WEBHOOKS_ALLOW_PRIVATE = True

    ids = {m.id for m in run_checks() if m.is_serious()}

    assert "notifier.E005" in ids
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    assert "notifier.E005" not in {m.id for m in run_checks() if m.is_serious()}


def test_each_checked_address_is_tried_in_turn(
    demo: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first address refuses the connection (nothing listens on 127.0.0.2 there): the
    attempt goes on to the next address, with the same host name, and is delivered."""
    import socket

    port = int(receiver.url.split(":")[2].split("/")[0])
    real = socket.getaddrinfo

    def two(host: str, port_: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "hooks.example.com":  # Redis, PostgreSQL
            return real(host, port_, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port_)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two)
    endpoint = WebhookEndpoint.objects.create(
        client=demo["client"],
        url=f"http://hooks.example.com:{port}/x",
        events=["delivery.sent"],
        secret=secret_new(),
    )
    message = endpoint_ping(endpoint=endpoint)
    transport.verified_ssl_context.cache_clear()
    built: list[object] = []
    real_context = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(args)
        return real_context(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)

    assert message_attempt(message_id=message.pk) == "delivered"
    (got,) = receiver.received
    assert got.headers["host"] == f"hooks.example.com:{port}"
    # One verifying SSL context (its CAs loaded, ~45 ms of CPU) for the process, not two per
    # address per attempt.
    assert message_attempt(message_id=endpoint_ping(endpoint=endpoint).pk) == "delivered"
    assert len(built) == 1
