"""OpenAPI generation: the error shape on every operation, and our two auth schemes.

`AutoSchema` (settings: REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]) documents the error answers
every API operation can give, so that the schema is true for the error paths too. The
authentication extensions (`apps.clients.schema`, `apps.recipients.schema`) describe
`Bearer <api key>` and `Recipient <token>`, and list on each operation only the schemes its
permissions actually let through (`schema_permits`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `fields` names each bad field.",
    "401": "Missing or invalid credentials.",
    "403": "Authenticated, but this kind of credential may not do this.",
    "404": "No such resource (or it belongs to another client).",
    "409": "Conflict, e.g. an idempotency key reused with a different body.",
    "413": "Request body too large.",
    "415": "Unsupported media type (send application/json).",
    "429": "Too many requests for this key; retry after `Retry-After` seconds.",
    "503": "The service is shedding load; retry after `Retry-After` seconds.",
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before retrying.",
    }
}
BODY_METHODS = {"POST", "PUT", "PATCH"}


class ErrorSerializer(serializers.Serializer[Any]):
    """The one error shape: `{"code", "message", "fields"}`."""

    code = serializers.CharField(help_text="Machine-readable error code, e.g. `invalid`.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(),
        help_text=(
            "For 400: each bad field with its messages (a list of strings; for items of a "
            "list or nested objects, an object keyed by index or sub-field)."
        ),
    )


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus the error responses each operation can give."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code in responses:
                continue
            response = self._get_response_for_code(  # type: ignore[no-untyped-call]
                ErrorSerializer, code, direction=direction
            )
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code in ("429", "503"):
                response["headers"] = {**response.get("headers", {}), **RETRY_AFTER}
            responses[code] = response
        return responses

    def _error_codes(self) -> list[str]:
        codes = ["400", "404", "503"]
        if not self._is_public():
            codes += ["401", "403", "429"]
        if self.method in BODY_METHODS:
            codes += ["413", "415"]
        return sorted(codes)

    def _is_public(self) -> bool:
        return all(isinstance(p, AllowAny) for p in self.view.get_permissions())


def schema_permits(auto_schema: Any, principal: Any) -> bool:
    """Whether the view's permissions let a caller authenticated as `principal` in."""
    view = auto_schema.view
    request = SimpleNamespace(
        user=principal, auth=None, method=auto_schema.method, query_params={}, data={}
    )
    try:
        return all(p.has_permission(request, view) for p in view.get_permissions())
    except Exception:  # a permission that needs more of the request: assume it may pass
        return True
