"""The topics endpoints and the topic notification are in the OpenAPI schema, with examples."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def test_topic_paths_and_methods(schema: dict[str, Any]) -> None:
    paths = schema["paths"]

    assert set(paths["/api/v1/topics"]) >= {"get"}
    assert set(paths["/api/v1/topics/{key}"]) >= {"put", "get", "delete"}
    assert set(paths["/api/v1/topics/{key}/subscribers"]) >= {"get", "post", "delete"}
    post = paths["/api/v1/topics/{key}/subscribers"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert [e["value"] for e in examples.values()] == [
        {"recipients": ["user-1", "user-2"]},
        {"recipients": ["user-1", {"id": "user-3", "email": "ana@example.com", "locale": "pt-BR"}]},
    ]


def test_subscribers_take_ids_or_inline_objects(
    schema: dict[str, Any],
) -> None:
    components = schema["components"]["schemas"]
    subscribers = schema["paths"]["/api/v1/topics/{key}/subscribers"]

    def body(method: str) -> dict[str, Any]:
        ref = subscribers[method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return dict(components[ref.rsplit("/", 1)[1]]["properties"]["recipients"])

    added = body("post")
    assert (added["minItems"], added["maxItems"]) == (1, 1000)
    kinds = added["items"]["oneOf"]
    assert [k["type"] for k in kinds] == ["string", "object"]
    assert kinds[1]["required"] == ["id"]
    assert kinds[1]["additionalProperties"] is False


def test_notification_topic_fields_and_examples(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    create = components["NotificationCreateRequest"]["properties"]
    post = schema["paths"]["/api/v1/notifications"]["post"]
    request_examples = post["requestBody"]["content"]["application/json"]["examples"]
    response_examples = post["responses"]["202"]["content"]["application/json"]["examples"]

    assert {"topic", "exclude"} <= set(create)
    assert {"recipients", "topic", "expected"} <= set(
        components["NotificationAccepted"]["properties"]
    )
    assert "fan_out" in components["Notification"]["properties"]
    assert any(e["value"].get("topic") == "order-123-watchers" for e in request_examples.values())
    assert any(e["value"].get("recipients") == "fan-out" for e in response_examples.values())
    assert "topics" in components["RecipientDetail"]["properties"]
