"""verify_webhook against payloads signed by the `standardwebhooks` package itself, with the
specification's headers."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook

from notifier_client import WebhookVerificationError, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"a secret of the endpoint, 32 b.").decode()
OTHER = "whsec_" + base64.b64encode(b"the secret before the rotation.").decode()
EVENT = {
    "id": "evt_1",
    "type": "delivery.sent",
    "created_at": "2026-01-01T00:00:00+00:00",
    "data": {"delivery": "d-1", "status": "sent"},
}
BODY = json.dumps(EVENT).encode()


def signed(
    body: bytes = BODY, secret: str = SECRET, at: datetime | None = None, msg_id: str = "msg_1"
) -> dict[str, str]:
    when = at or datetime.now(timezone.utc)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def test_a_signed_event_verifies_and_is_returned() -> None:
    assert verify_webhook(signed(), BODY, SECRET) == EVENT
    assert verify_webhook(signed(), BODY.decode(), SECRET) == EVENT  # str bodies too


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in signed().items()}
    assert verify_webhook(headers, BODY, SECRET) == EVENT


def test_several_signatures_any_one_of_them_is_enough() -> None:
    headers = signed()
    old = signed(secret=OTHER)["webhook-signature"]
    headers["webhook-signature"] = f"{old}  v2,c29tZXRoaW5n garbage {headers['webhook-signature']}"

    assert verify_webhook(headers, BODY, SECRET) == EVENT
    assert verify_webhook(headers, BODY, OTHER) == EVENT


def test_any_of_several_secrets_verifies() -> None:
    assert verify_webhook(signed(secret=OTHER), BODY, [SECRET, OTHER]) == EVENT


@pytest.mark.parametrize(
    ("headers", "body", "secret"),
    [
        pytest.param(signed(), BODY.replace(b"sent", b"dead"), SECRET, id="tampered body"),
        pytest.param(signed(), BODY, OTHER, id="another secret"),
        pytest.param(
            signed(at=datetime.now(timezone.utc) - timedelta(minutes=10)),
            BODY,
            SECRET,
            id="too old",
        ),
        pytest.param(
            signed(at=datetime.now(timezone.utc) + timedelta(minutes=10)),
            BODY,
            SECRET,
            id="from the future",
        ),
        pytest.param(
            {k: v for k, v in signed().items() if k != "webhook-id"}, BODY, SECRET, id="no id"
        ),
        pytest.param({**signed(), "webhook-id": "msg_2"}, BODY, SECRET, id="another id"),
        pytest.param({**signed(), "webhook-timestamp": "soon"}, BODY, SECRET, id="bad timestamp"),
        pytest.param({**signed(), "webhook-signature": "v1,"}, BODY, SECRET, id="empty signature"),
        pytest.param({**signed(), "webhook-signature": "v1,%%%"}, BODY, SECRET, id="not base64"),
        pytest.param({}, BODY, SECRET, id="no headers"),
        pytest.param(signed(), b"\xff\xfe", SECRET, id="not utf-8"),
        pytest.param(signed(), BODY, "whsec_", id="empty secret"),
        pytest.param(signed(), BODY, "whsec_!", id="secret not base64"),
        pytest.param(signed(), BODY, [], id="no secret"),
    ],
)
def test_what_does_not_verify_is_refused(
    headers: dict[str, str], body: bytes, secret: str | list[str]
) -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body, secret)


def test_a_signed_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        verify_webhook(signed(b"not json"), b"not json", SECRET)


@pytest.mark.parametrize(
    "secret",
    [SECRET.encode(), [SECRET.encode()], [SECRET, 42], bytearray(SECRET.encode())],
    ids=["bytes", "a list of bytes", "a list with an int", "bytearray"],
)
def test_a_secret_that_is_not_a_string_is_a_type_error(secret: object) -> None:
    with pytest.raises(TypeError, match="whsec_"):
        verify_webhook(signed(), BODY, secret)  # type: ignore[arg-type]
