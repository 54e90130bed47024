"""Firebase Cloud Messaging HTTP v1 (`messages:send`), as `firebase-admin` speaks it."""

from __future__ import annotations

import re
import uuid
from typing import Any

from simulators.core import Provider, Reply

SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# HTTP status -> (Google RPC status, FCM errorCode), as FCM answers them.
STATUS_ERRORS = {
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
    403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
    404: ("NOT_FOUND", "UNREGISTERED"),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    500: ("INTERNAL", "INTERNAL"),
    503: ("UNAVAILABLE", "UNAVAILABLE"),
}


def fcm_error(status: int, rpc_status: str, error_code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": rpc_status,
            "details": [{"@type": FCM_ERROR_TYPE, "errorCode": error_code}],
        }
    }


class FcmSimulator(Provider):
    name = "fcm"

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        match = SEND_PATH.match(path)
        if method != "POST" or match is None:
            return Reply(
                404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}
            )
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return Reply(
                400,
                fcm_error(
                    400,
                    "INVALID_ARGUMENT",
                    "INVALID_ARGUMENT",
                    "Request contains an invalid argument.",
                ),
            )
        targets = [k for k in ("token", "topic", "condition", "fid") if message.get(k)]
        if len(targets) != 1:
            return Reply(
                400,
                fcm_error(
                    400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Exactly one target is required."
                ),
            )
        name = f"projects/{match.group('project')}/messages/{uuid.uuid4().hex}"
        return Reply(200, {"name": name})

    def invalid(self, path: str, body: Any) -> Reply:
        return Reply(
            404, fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
        )

    def error(self, status: int, retry_after: float | None) -> Reply:
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        rpc_status, error_code = STATUS_ERRORS.get(status, ("UNKNOWN", "UNSPECIFIED_ERROR"))
        return Reply(
            status, fcm_error(status, rpc_status, error_code, f"Simulated {status}"), headers
        )

    def key(self, path: str, body: Any) -> str:
        """The delivery id, sent in the message's `data`."""
        if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
            return ""
        data = body["message"].get("data") or {}
        return str(data.get("delivery_id", "")) if isinstance(data, dict) else ""
