"""SendGrid v3 Mail Send, as the `sendgrid` SDK speaks it."""

from __future__ import annotations

import uuid
from typing import Any

from simulators.core import Provider, Reply


class SendGridSimulator(Provider):
    name = "sendgrid"

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        if method != "POST" or path != "/v3/mail/send":
            return Reply(404, {"errors": [{"message": "not found"}]})
        if not headers.get("authorization", "").startswith("Bearer "):
            return Reply(401, {"errors": [{"message": "authorization required"}]})
        if not isinstance(body, dict) or not body.get("personalizations") or not body.get("from"):
            return Reply(400, {"errors": [{"message": "bad request", "field": "personalizations"}]})
        return Reply(202, None, {"X-Message-Id": uuid.uuid4().hex})

    def invalid(self, path: str, body: Any) -> Reply:
        return Reply(
            400,
            {"errors": [{"message": "Does not contain a valid address.", "field": "to.email"}]},
        )

    def key(self, path: str, body: Any) -> str:
        if isinstance(body, dict):
            args = body.get("custom_args") or {}
            return str(args.get("delivery_id", ""))
        return ""
