"""OpenAPI: the `Recipient <token>` scheme, on operations a recipient token may call."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from apps.core.schema import schema_permits


class RecipientScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "apps.recipients.auth.RecipientTokenAuthentication"
    name = "Recipient"

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        from apps.recipients.auth import RecipientPrincipal
        from apps.recipients.models import Recipient

        if not schema_permits(auto_schema, RecipientPrincipal(Recipient(external_id="schema"))):
            return []
        return [{self.name: []}]

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Authorization: Recipient <token>`; a service mints the token with "
                "`POST /api/v1/recipients/{external_id}/token`."
            ),
        }
