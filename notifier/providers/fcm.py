"""Push through Firebase Admin's FCM v1 client (`firebase-admin`), its errors classified here.

One message per device token (android, ios and web tokens all go through FCM). The SDK has no
public base-URL option and retries 5xx/429 by itself (sleeping); both are adjusted in
`messaging_service_configure`, the one place that touches the SDK's private attributes.
"""

from __future__ import annotations

import uuid
from typing import Any

import firebase_admin
import google.auth.credentials
import requests
from firebase_admin import credentials, exceptions, messaging
from urllib3.util.retry import Retry

from notifier.errors import PermanentFailure, TransientFailure, parse_retry_after
from notifier.providers.base import OutboundMessage, SendResult

FCM_HOST = "https://fcm.googleapis.com"

# No retries at any level (connect, read, status, Retry-After): our policy is the only one.
NO_RETRIES = Retry(
    total=0, connect=0, read=0, status=0, respect_retry_after_header=False, raise_on_status=False
)


class AnonymousCredential(credentials.Base):  # type: ignore[misc]  # untyped SDK base
    """No credentials, as for an emulator (a local simulator)."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]


def messaging_service_configure(
    app: firebase_admin.App, *, fcm_url: str, connections: int = 32
) -> None:
    """Point the app's messaging service at `fcm_url` and turn the SDK's retries off.

    Uses private attributes (`_get_messaging_service`, `_fcm_url`, `_client`) because the SDK
    offers no public way; tests/notifier/test_fcm_sdk_internals.py fails loudly if they move.
    """
    service = messaging._get_messaging_service(app)
    if not hasattr(service, "_fcm_url") or not hasattr(service, "_client"):
        raise RuntimeError("firebase-admin moved its FCM URL: update messaging_service_configure")
    service._fcm_url = fcm_url
    session: requests.Session = service._client.session
    # Keep-alive connections for as many calls as may be in flight at once.
    adapter = requests.adapters.HTTPAdapter(
        pool_maxsize=max(connections, 1), max_retries=NO_RETRIES
    )
    for prefix in ("http://", "https://", FCM_HOST):
        session.mount(prefix, adapter)


class FcmProvider:
    name = "fcm"

    def __init__(
        self,
        *,
        project_id: str,
        credentials_file: str = "",
        base_url: str = "",
        timeout: float = 10.0,
        connections: int = 32,
    ) -> None:
        credential: credentials.Base = (
            credentials.Certificate(credentials_file) if credentials_file else AnonymousCredential()
        )
        # A named app per provider instance: several may coexist (tests, reconfiguration).
        self.app = firebase_admin.initialize_app(
            credential,
            {"projectId": project_id, "httpTimeout": timeout},
            name=f"notifier-fcm-{uuid.uuid4().hex}",
        )
        host = (base_url or FCM_HOST).rstrip("/")
        self.url = f"{host}/v1/projects/{project_id}/messages:send"
        messaging_service_configure(self.app, fcm_url=self.url, connections=connections)

    def build(self, message: OutboundMessage) -> messaging.Message:
        data = {str(k): str(v) for k, v in message.data.items()}
        # Echoed to the app and recorded by the simulator: ties the push to its delivery.
        data["delivery_id"] = message.delivery_id
        built = messaging.Message(
            notification=messaging.Notification(title=message.title or None, body=message.body),
            data=data,
        )
        # firebase-admin 7.7 warns on Message(token=...) (it prefers `fid`), but registration
        # tokens are what devices hand us and FCM v1 still takes them: set the attribute the
        # encoder reads, without touching the process-wide warning filters.
        built.token = message.to
        return built

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            name = messaging.send(self.build(message), app=self.app)
        except exceptions.FirebaseError as exc:
            raise classify_firebase_error(exc) from exc
        return SendResult(provider_message_id=str(name), status_code=200)


def classify_firebase_error(exc: exceptions.FirebaseError) -> TransientFailure | PermanentFailure:
    """A firebase-admin error as transient (timeouts, 429, 5xx) or permanent (dead token, 4xx)."""
    response: Any = exc.http_response
    status = int(response.status_code) if response is not None else None
    detail = str(exc)[:500]
    if isinstance(exc, messaging.UnregisteredError):
        return PermanentFailure(
            "fcm token unregistered", status_code=status, detail=detail, deactivate_token=True
        )
    if isinstance(exc, messaging.SenderIdMismatchError):
        return PermanentFailure(
            "fcm token of another sender", status_code=status, detail=detail, deactivate_token=True
        )
    if isinstance(exc, exceptions.InvalidArgumentError) and "token" in detail.lower():
        # 400 INVALID_ARGUMENT naming the token: a malformed registration token.
        return PermanentFailure(
            "fcm invalid token", status_code=status, detail=detail, deactivate_token=True
        )
    if status is None:  # no answer: timeout or connection error
        kind = "timeout" if isinstance(exc, exceptions.DeadlineExceededError) else "connection"
        return TransientFailure(f"fcm {kind}", detail=detail)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return TransientFailure(
            f"fcm {status}", retry_after=retry_after, status_code=status, detail=detail
        )
    if status in (401, 403):
        return PermanentFailure(f"fcm rejected credentials ({status})", status_code=status)
    return PermanentFailure(f"fcm {status} ({exc.code})", status_code=status, detail=detail)
