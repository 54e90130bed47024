"""Twilio provider against the Twilio simulator: every fault kind classified, nothing retried."""

from __future__ import annotations

import pytest

from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage
from notifier.providers.twilio import TwilioProvider
from tests.support.processes import Simulator

SID = "AC" + "2" * 32


def provider(sim: Simulator, *, timeout: float = 10.0, callback: str = "") -> TwilioProvider:
    return TwilioProvider(
        account_sid=SID,
        auth_token="secret",
        from_number="+15550000001",
        base_url=sim.url,
        status_callback=callback,
        timeout=timeout,
    )


def sms(delivery_id: str = "d-1", to: str = "+15551234567") -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, channel="sms", to=to, body="Order shipped.")


def test_send_posts_the_form_and_returns_the_message_sid(twilio: Simulator) -> None:
    result = provider(twilio, callback="https://notifier.example/webhooks/twilio/status").send(
        sms("d-42")
    )

    assert result.provider_message_id.startswith("SM")
    assert result.status_code == 201
    (received,) = twilio.requests()
    assert received["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert received["body"] == {
        "To": "+15551234567",
        "From": "+15550000001",
        "Body": "Order shipped.",
        "StatusCallback": "https://notifier.example/webhooks/twilio/status?delivery_id=d-42",
    }
    assert received["key"] == "d-42"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient_and_not_retried_by_the_sdk(
    twilio: Simulator, status: int
) -> None:
    twilio.fault(kind="status", status=status)

    with pytest.raises(TransientFailure) as caught:
        provider(twilio).send(sms())

    assert caught.value.status_code == status
    assert caught.value.retry_after is None
    assert len(twilio.requests()) == 1


def test_429_is_transient_with_retry_after_from_the_kept_headers(twilio: Simulator) -> None:
    twilio.fault(kind="status", status=429, retry_after=7)

    with pytest.raises(TransientFailure) as caught:
        provider(twilio).send(sms())

    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7.0
    assert len(twilio.requests()) == 1


def test_invalid_number_is_permanent_with_twilio_code(twilio: Simulator) -> None:
    twilio.fault(kind="invalid")

    with pytest.raises(PermanentFailure) as caught:
        provider(twilio).send(sms())

    assert caught.value.reason == "twilio invalid number (21211)"
    assert caught.value.status_code == 400
    assert "21211" in caught.value.detail


def test_number_not_in_e164_is_rejected_by_the_simulator_as_invalid(twilio: Simulator) -> None:
    with pytest.raises(PermanentFailure) as caught:
        provider(twilio).send(sms(to="0555-1234"))

    assert caught.value.reason == "twilio invalid number (21211)"


def test_other_4xx_is_permanent(twilio: Simulator) -> None:
    twilio.fault(kind="status", status=404)

    with pytest.raises(PermanentFailure) as caught:
        provider(twilio).send(sms())

    assert caught.value.status_code == 404


def test_timeout_is_transient(twilio: Simulator) -> None:
    twilio.fault(kind="timeout", seconds=3)

    with pytest.raises(TransientFailure) as caught:
        provider(twilio, timeout=0.5).send(sms())

    assert caught.value.reason == "timeout"


def test_latency_still_sends(twilio: Simulator) -> None:
    twilio.fault(kind="latency", ms=200)

    result = provider(twilio).send(sms())

    assert result.provider_message_id.startswith("SM")


def test_connection_refused_is_transient() -> None:
    from tests.support.processes import free_port

    dead = TwilioProvider(
        account_sid=SID,
        auth_token="secret",
        from_number="+15550000001",
        base_url=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(TransientFailure) as caught:
        dead.send(sms())

    assert caught.value.reason == "connection error"
