"""FCM provider against the FCM simulator: every fault kind classified, the SDK never retries."""

from __future__ import annotations

import pytest

from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage
from notifier.providers.fcm import FcmProvider
from tests.support.processes import Simulator, free_port


def provider(sim: Simulator, *, timeout: float = 10.0) -> FcmProvider:
    return FcmProvider(project_id="proj-1", base_url=sim.url, timeout=timeout)


def push(delivery_id: str = "d-1", device: str = "token-abc") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=delivery_id,
        channel="push",
        to=device,
        title="Shipped",
        body="Order A-1",
        data={"notification_id": "n-1"},
    )


def test_send_posts_the_message_and_returns_its_name(fcm: Simulator) -> None:
    result = provider(fcm).send(push("d-7"))

    assert result.provider_message_id.startswith("projects/proj-1/messages/")
    (received,) = fcm.requests()
    assert received["path"] == "/v1/projects/proj-1/messages:send"
    assert received["body"] == {
        "message": {
            "token": "token-abc",
            "notification": {"title": "Shipped", "body": "Order A-1"},
            "data": {"notification_id": "n-1", "delivery_id": "d-7"},
        }
    }
    assert received["key"] == "d-7"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient_and_not_retried_by_the_sdk(
    fcm: Simulator, status: int
) -> None:
    fcm.fault(kind="status", status=status)

    with pytest.raises(TransientFailure) as caught:
        provider(fcm).send(push())

    assert caught.value.status_code == status
    assert len(fcm.requests()) == 1  # the SDK's own retries are off


def test_429_with_retry_after_is_transient_and_answered_at_once(fcm: Simulator) -> None:
    fcm.fault(kind="status", status=429, retry_after=7)

    with pytest.raises(TransientFailure) as caught:
        provider(fcm).send(push())

    assert caught.value.retry_after == 7.0
    assert caught.value.status_code == 429
    assert len(fcm.requests()) == 1


def test_unregistered_token_is_permanent_and_deactivates(fcm: Simulator) -> None:
    fcm.fault(kind="invalid")

    with pytest.raises(PermanentFailure) as caught:
        provider(fcm).send(push())

    assert caught.value.reason == "fcm token unregistered"
    assert caught.value.deactivate_token is True
    assert caught.value.status_code == 404
    assert len(fcm.requests()) == 1


def test_sender_id_mismatch_deactivates(fcm: Simulator) -> None:
    fcm.fault(kind="status", status=403)

    with pytest.raises(PermanentFailure) as caught:
        provider(fcm).send(push())

    assert caught.value.deactivate_token is True


def test_bad_request_is_permanent_without_deactivating(fcm: Simulator) -> None:
    fcm.fault(kind="status", status=400)

    with pytest.raises(PermanentFailure) as caught:
        provider(fcm).send(push())

    assert caught.value.deactivate_token is False
    assert caught.value.status_code == 400


def test_timeout_is_transient_and_not_retried(fcm: Simulator) -> None:
    fcm.fault(kind="timeout", seconds=3)

    with pytest.raises(TransientFailure) as caught:
        provider(fcm, timeout=0.5).send(push())

    assert caught.value.reason == "fcm timeout"
    assert len(fcm.requests()) == 1


def test_latency_still_sends(fcm: Simulator) -> None:
    fcm.fault(kind="latency", ms=200)

    assert provider(fcm).send(push()).provider_message_id


def test_connection_refused_is_transient() -> None:
    dead = FcmProvider(project_id="proj-1", base_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(TransientFailure) as caught:
        dead.send(push())

    assert caught.value.reason == "fcm connection"
