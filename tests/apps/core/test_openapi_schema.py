"""The OpenAPI schema is generated from the code, valid, and documents auth and errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate_schema(schema)


def test_schema_and_docs_are_served_without_a_key() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = Client().get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/v1/notifications" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_both_auth_schemes_are_described(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]

    assert schemes["Bearer"]["type"] == "http"
    assert schemes["Bearer"]["scheme"] == "bearer"
    assert schemes["Recipient"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["Recipient"]["description"],
    }


def test_service_endpoints_require_bearer_only(schema: dict[str, Any]) -> None:
    notifications = schema["paths"]["/api/v1/notifications"]

    assert notifications["post"]["security"] == [{"Bearer": []}]
    assert notifications["get"]["security"] == [{"Bearer": []}]


def test_every_api_operation_documents_its_errors_in_the_error_shape(
    schema: dict[str, Any],
) -> None:
    error_ref = {"$ref": "#/components/schemas/Error"}
    for method, path, op in operations(schema):
        if not path.startswith("/api/v1/"):
            continue
        responses = op["responses"]
        for code in ("400", "401", "403", "404", "429", "503"):
            assert code in responses, (method, path, code)
            assert responses[code]["content"]["application/json"]["schema"] == error_ref
        assert "Retry-After" in responses["429"]["headers"], (method, path)
        if method in {"POST", "PUT", "PATCH"}:
            assert "413" in responses, (method, path)


def test_notification_create_documents_202_409_and_the_idempotency_header(
    schema: dict[str, Any],
) -> None:
    op = schema["paths"]["/api/v1/notifications"]["post"]

    assert set(op["responses"]) >= {"202", "409"}
    assert "Idempotency-Key" in [p["name"] for p in op["parameters"] if p["in"] == "header"]


def test_list_documents_filters_and_cursor(schema: dict[str, Any]) -> None:
    op = schema["paths"]["/api/v1/notifications"]["get"]
    params = {p["name"]: p for p in op["parameters"]}

    assert set(params) >= {"recipient", "status", "channel", "cursor", "limit"}
    assert (
        "dead" in params["status"]["schema"].get("enum", []) or "$ref" in params["status"]["schema"]
    )
    page = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][page.rsplit("/", 1)[-1]]
    assert set(component["properties"]) == {"next", "results"}


def test_schema_generates_without_warnings(tmp_path: Any) -> None:
    """Warnings mean a guessed part of the schema (unknown serializer, enum clash, id clash)."""
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert out.stat().st_size > 0
