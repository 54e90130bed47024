"""The OpenAPI schema documents throttles and escalation, with examples that the API accepts
(a topic's with them too)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.factories import SubscriptionFactory, TopicFactory


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def test_notification_create_documents_throttle_and_escalation(schema: dict[str, Any]) -> None:
    create = schema["components"]["schemas"]["NotificationCreateRequest"]["properties"]
    throttle, escalation = create["throttle"], create["escalation"]

    assert throttle["oneOf"][0]["properties"]["window"]["example"] == "10m"
    assert throttle["oneOf"][1] == {"type": "boolean", "enum": [False]}
    step = escalation["items"]["properties"]
    assert step["unless"]["enum"] == ["delivered", "opened", "clicked", "read", "seen"]
    template = schema["components"]["schemas"]["TemplateWriteRequest"]["properties"]["throttle"]
    assert template["example"] == {"limit": 1, "window": "10m", "key": "{{ thread_id }}"}
    detail = schema["components"]["schemas"]["Notification"]["properties"]
    assert {"throttle", "escalation"} <= set(detail)


@pytest.mark.django_db(transaction=True)
def test_the_escalation_example_is_accepted(
    schema: dict[str, Any], api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    examples = schema["paths"]["/api/v1/notifications"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    escalated = next(e["value"] for e in examples.values() if "escalation" in e["value"])

    response = api.post("/api/v1/notifications", escalated, format="json")

    assert response.status_code == 202, response.content
    assert [d["status"] for d in response.json()["deliveries"]] == [
        "queued",
        "scheduled",
        "scheduled",
    ]


@pytest.mark.django_db(transaction=True)
def test_the_topic_workflow_example_is_accepted(
    schema: dict[str, Any], api: APIClient, demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    examples = schema["paths"]["/api/v1/notifications"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    body = next(
        e["value"] for e in examples.values() if "topic" in e["value"] and "throttle" in e["value"]
    )
    topic = TopicFactory(client=demo["client"], key=body["topic"])
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])

    response = api.post("/api/v1/notifications", body, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["recipients"] == "fan-out"
