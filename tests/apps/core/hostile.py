"""The hostile-input tests' table of valid bodies per operation and their helpers
(test_hostile_input.py: bodies; test_hostile_queries.py: queries, paths and headers)."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.test import APIClient

from apps.deliveries.models import DeadLetter, Delivery, Notification
from apps.inbox.models import InboxMessage
from apps.recipients.models import Device, Preference, Recipient
from apps.templates.models import Template, TemplateVersion
from apps.topics.models import Subscription, Topic
from tests.apps.core.test_error_shape_everywhere import PARAM

# A body each operation accepts (2xx), keyed by (route as in the URLconf, method).
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("api/v1/notifications", "post"): {
        "recipient": "user-1",
        "template": "order_shipped",
        "variables": {"order_id": "A-1", "lines": [{"sku": "X", "qty": 1}]},
        "channels": ["email", "sms"],
        "priority": "high",
        "category": "orders",
        "throttle": {"limit": 100, "window": "10m", "key": "{{ order_id }}"},
        "escalation": [{"after": "30m", "channels": ["push"], "unless": "read"}],
    },
    ("api/v1/notifications/<uuid:notification_id>/cancel", "post"): {},
    ("api/v1/dead-letters/replay", "post"): {"ids": ["dead_letter_id"]},
    ("api/v1/dead-letters/<int:dead_letter_id>/replay", "post"): {},
    ("api/v1/inbox/read-all", "post"): {},
    ("api/v1/inbox/seen", "post"): {"ids": [1]},
    ("api/v1/inbox/<int:message_id>/read", "post"): {},
    ("api/v1/inbox/<int:message_id>/archive", "post"): {},
    ("api/v1/inbox/<int:message_id>/unarchive", "post"): {},
    ("api/v1/recipients/<str:external_id>", "put"): {
        "name": "Ada L.",
        "timezone": "Europe/Paris",
        "data": {"plan": "pro", "tags": ["a", "b"], "n": 3},
    },
    ("api/v1/recipients/<str:external_id>/preferences", "put"): {
        "channels": {"sms": False},
        "categories": {"marketing": {"email": False}},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "daily_limit": 5,
    },
    ("api/v1/recipients/<str:external_id>/devices", "post"): {
        "token": "device-token-new",
        "platform": "android",
    },
    ("api/v1/recipients/<str:external_id>/token", "post"): {"ttl_seconds": 3600},
    ("api/v1/recipients/<str:external_id>/preferences-link", "post"): {},  # takes no body
    ("api/v1/templates", "post"): {
        "key": "welcome",
        "category": "onboarding",
        "variables": ["plan"],
        "variants": [{"channel": "sms", "body": "Welcome to {{ plan }}"}],
    },
    ("api/v1/templates/<slug:key>", "put"): {
        # An A/B test: the label and weight fields get the hostile values too.
        "variants": [
            {"channel": "push", "title": "Hi", "body": "New version", "label": "A", "weight": 3},
            {"channel": "push", "title": "Hey", "body": "New version", "label": "B", "weight": 1},
        ],
    },
    ("api/v1/topics/<str:key>", "put"): {"name": "Order watchers", "description": "Who follows"},
    ("api/v1/topics/<str:key>/subscribers", "post"): {"recipients": ["user-1"]},
    ("api/v1/webhook-endpoints", "post"): {
        "url": "http://127.0.0.1:9/hook",  # test settings allow loopback (WEBHOOKS_ALLOW_PRIVATE)
        "events": ["delivery.sent"],
        "description": "Orders",
    },
    ("api/v1/webhook-endpoints/<str:endpoint_id>", "patch"): {"description": "Orders, all"},
    ("api/v1/webhook-endpoints/<str:endpoint_id>/rotate-secret", "post"): {},
    ("api/v1/webhook-endpoints/<str:endpoint_id>/test", "post"): {},
    ("api/v1/webhook-endpoints/<str:endpoint_id>/messages/<str:message_id>/replay", "post"): {},
}
# The operations that read a recipient token rather than an API key.
RECIPIENT_AUTH = {route for route, _ in VALID_BODIES if route.startswith("api/v1/inbox")} | {
    "api/v1/inbox"
}


def url_for(route: str, world: dict[str, Any]) -> str:
    return "/" + PARAM.sub(lambda m: world["params"][m.group(2)], route)


def valid_body(route: str, method: str, world: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(VALID_BODIES[(route, method)]))
    if "ids" in body:
        body["ids"] = [world["dead_letter_id"]]
    return body


def client_for(route: str, world: dict[str, Any]) -> APIClient:
    client = APIClient(raise_request_exception=False)
    kind = "recipient" if route in RECIPIENT_AUTH else "service"
    client.credentials(HTTP_AUTHORIZATION=world[kind])
    return client


def snapshot() -> tuple[Any, ...]:
    """Everything the body operations could create or change."""
    return (
        list(Notification.objects.order_by("id").values_list("id", flat=True)),
        list(Delivery.objects.order_by("id").values_list("id", "status", "updated_at")),
        list(Recipient.objects.order_by("id").values_list("id", "name", "timezone", "data")),
        list(Preference.objects.order_by("id").values()),
        list(Device.objects.order_by("id").values_list("id", "token", "recipient_id")),
        list(Template.objects.order_by("id").values_list("id", "key", "updated_at")),
        TemplateVersion.objects.count(),
        list(DeadLetter.objects.order_by("id").values_list("id", "replayed_at")),
        list(InboxMessage.objects.order_by("id").values_list("id", "read_at", "seen_at")),
        list(Topic.objects.order_by("id").values_list("id", "key", "name", "description")),
        list(Subscription.objects.order_by("id").values_list("id", "topic_id", "recipient_id")),
    )


def assert_error_shape(response: Any, *, allowed: set[int]) -> dict[str, Any]:
    assert response.status_code in allowed, (response.status_code, response.content[:400])
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "fields"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["fields"], dict)
    return body


def with_extra(body: dict[str, Any], raw_value: str) -> str:
    """`body` as JSON text with one more member, `"extra": <raw_value>` (raw JSON text)."""
    text = json.dumps({**body, "extra": None})
    assert text.endswith('"extra": null}')
    return text[: -len("null}")] + raw_value + "}"


NUL_MESSAGE = "Must not contain NUL characters (\\u0000)."

# name -> (raw JSON for the `extra` member, what `fields` must say, or None for any)
HOSTILE_EXTRAS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "NUL in a nested value": (
        '{"note": ["ok", "a\\u0000b"]}',
        {"extra": {"note": {"1": [NUL_MESSAGE]}}},
    ),
    "NUL in a key": ('{"a\\u0000": 1}', {"extra": {"a\\u0000": [f"Key: {NUL_MESSAGE}"]}}),
    "lone high surrogate": (
        '"x\\ud800"',
        {"extra": ["Must not contain unpaired surrogate characters (\\ud800)."]},
    ),
    "lone low surrogate in a key": (
        '[{"\\udfff": 1}]',
        {
            "extra": {
                "0": {"\\udfff": ["Key: Must not contain unpaired surrogate characters (\\udfff)."]}
            }
        },
    ),
    "surrogates in the wrong order": ('"\\udc00\\ud800"', None),
    "arrays nested 1000 deep": ("[" * 1000 + "]" * 1000, {}),
    "objects nested 1000 deep": ('{"a": ' * 1000 + "1" + "}" * 1000, {}),
    "arrays nested 100000 deep, never closed": ("[" * 100_000, {}),
    "one level deeper than JSON_MAX_DEPTH": ("[" * 32 + "]" * 32, {}),
    "NaN": ("NaN", {}),
    "Infinity": ("Infinity", {}),
    "-Infinity": ("-Infinity", {}),
    "a float that overflows": ("1e999", {}),
    "a negative float that overflows": ("-1e999", {}),
    "an integer of 5000 digits": ("1" * 5000, {}),
    "duplicate keys": ('1, "extra": 2', {}),
}
