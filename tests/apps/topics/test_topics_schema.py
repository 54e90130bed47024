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
    assert [e["value"] for e in examples.values()] == [{"recipients": ["user-1", "user-2"]}]


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
