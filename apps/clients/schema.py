"""OpenAPI: the `Bearer <api key>` scheme, on operations whose permissions let an API key in."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from apps.core.schema import schema_permits


class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "apps.clients.auth.ApiKeyAuthentication"
    name = "Bearer"

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        from apps.clients.models import ApiClient

        if not schema_permits(auto_schema, ApiClient(name="schema", is_ops=True)):
            return []
        return [{self.name: []}]

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <api key>` (from `manage.py create_api_key`).",
        }
