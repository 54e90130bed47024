"""SendGrid provider against the SendGrid simulator: every fault kind classified."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage
from notifier.providers.sendgrid import SendGridProvider
from tests.support.processes import Simulator, free_port


def provider(sim: Simulator, *, timeout: float = 10.0) -> SendGridProvider:
    return SendGridProvider(
        api_key="SG.test", from_email="from@example.com", host=sim.url, timeout=timeout
    )


def mail(delivery_id: str = "d-1") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=delivery_id, channel="email", to="ada@example.com", subject="Hi", body="Hello"
    )


def test_sends_reuse_keep_alive_connections_up_to_the_pool_size(sendgrid: Simulator) -> None:
    # Given one provider whose pool keeps 8 connections
    one = SendGridProvider(
        api_key="SG.test", from_email="from@example.com", host=sendgrid.url, connections=8
    )

    # When it sends 10 emails one after another, then 24 from 8 threads at once
    for n in range(10):
        one.send(mail(f"s-{n}"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: one.send(mail(f"p-{n}")), range(24)))

    # Then the 10 went over one connection, and the 24 over at most 8: never more calls at once
    # than the pool keeps, so every call after the first eight finds a kept connection free
    peers = [r["peer"] for r in sendgrid.requests()]
    assert len(peers) == 34
    assert len(set(peers[:10])) == 1
    assert len(set(peers[10:])) <= 8


def test_send_is_accepted_with_the_message_id(sendgrid: Simulator) -> None:
    result = provider(sendgrid).send(mail("d-9"))

    assert result.status_code == 202
    assert result.provider_message_id
    (received,) = sendgrid.requests()
    assert received["key"] == "d-9"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(sendgrid: Simulator, status: int) -> None:
    sendgrid.fault(kind="status", status=status)

    with pytest.raises(TransientFailure) as caught:
        provider(sendgrid).send(mail())

    assert caught.value.status_code == status
    assert len(sendgrid.requests()) == 1


def test_429_is_transient_with_retry_after(sendgrid: Simulator) -> None:
    sendgrid.fault(kind="status", status=429, retry_after=3)

    with pytest.raises(TransientFailure) as caught:
        provider(sendgrid).send(mail())

    assert caught.value.retry_after == 3.0


def test_invalid_address_is_permanent(sendgrid: Simulator) -> None:
    sendgrid.fault(kind="invalid")

    with pytest.raises(PermanentFailure) as caught:
        provider(sendgrid).send(mail())

    assert caught.value.status_code == 400
    assert "valid address" in caught.value.detail


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_are_permanent(sendgrid: Simulator, status: int) -> None:
    sendgrid.fault(kind="status", status=status)

    with pytest.raises(PermanentFailure) as caught:
        provider(sendgrid).send(mail())

    assert caught.value.reason == f"sendgrid rejected credentials ({status})"


def test_timeout_is_transient(sendgrid: Simulator) -> None:
    sendgrid.fault(kind="timeout", seconds=3)

    with pytest.raises(TransientFailure):
        provider(sendgrid, timeout=0.5).send(mail())


def test_latency_still_sends(sendgrid: Simulator) -> None:
    sendgrid.fault(kind="latency", ms=200)

    assert provider(sendgrid).send(mail()).status_code == 202


def test_connection_refused_is_transient() -> None:
    dead = SendGridProvider(
        api_key="SG.test", from_email="from@example.com", host=f"http://127.0.0.1:{free_port()}"
    )

    with pytest.raises(TransientFailure) as caught:
        dead.send(mail())

    assert caught.value.reason == "connection error"


def test_a_proxy_from_the_environment_is_used(
    sendgrid: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given HTTP_PROXY naming a proxy that refuses connections (as urllib's opener read it)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    # When an email is sent to the simulator
    with pytest.raises(TransientFailure) as caught:
        provider(sendgrid).send(mail())

    # Then it went to the proxy (refused), not straight to the simulator
    assert caught.value.reason == "connection error"
    assert sendgrid.requests() == []


def test_mail_headers_reach_the_simulator_as_headers_of_the_mail(sendgrid: Simulator) -> None:
    # Given an email carrying RFC 8058's one-click unsubscribe headers
    headers = {
        "List-Unsubscribe": "<https://notify.example.com/u/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    provider(sendgrid).send(dataclasses.replace(mail("d-7"), headers=headers))

    # Then SendGrid's API receives them in the mail's `headers` object
    (received,) = sendgrid.requests()
    assert received["body"]["headers"] == headers


def test_a_mail_without_extra_headers_sends_no_headers_object(sendgrid: Simulator) -> None:
    provider(sendgrid).send(mail("d-8"))

    (received,) = sendgrid.requests()
    assert "headers" not in received["body"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"List-Unsubscribe": "<https://notify.example.com/u/abc>"}],
    ids=["critical", "with-link"],
)
def test_every_mail_turns_sendgrids_own_subscription_tracking_off(
    sendgrid: Simulator, headers: dict[str, str]
) -> None:
    # The account's Subscription Tracking would add SendGrid's own unsubscribe link and list,
    # which our preferences never hear of (and to critical mail too).
    provider(sendgrid).send(dataclasses.replace(mail("d-9"), headers=headers))

    (received,) = sendgrid.requests()
    assert received["body"]["tracking_settings"] == {"subscription_tracking": {"enable": False}}
