"""Hostile input against every API endpoint: a 4xx in the error shape, never a 500, and nothing
created, changed or queued.

Each operation that takes a body (discovered from the URLconf, so a new one must join the
table) is sent a body that is valid for it, then the same body with something hostile added:
NUL characters and lone surrogates (PostgreSQL cannot store them), nesting a thousand deep
(Python's json recurses), NaN and overflowing numbers, duplicate keys, bytes that are not
UTF-8, a wrong type at every level. The request line and headers get NUL bytes too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.deliveries.models import DeadLetter, Delivery, Notification
from apps.inbox.models import InboxMessage
from apps.recipients.models import Device, Preference, Recipient
from apps.recipients.tokens import recipient_token_mint
from apps.templates.models import Template, TemplateVersion
from apps.topics.models import Subscription, Topic
from tests.apps.core.test_error_shape_everywhere import BODY_OPERATIONS, OPERATIONS, PARAM
from tests.factories import (
    ApiKeyFactory,
    DeadLetterFactory,
    DeliveryFactory,
    DeviceFactory,
    InboxMessageFactory,
    NotificationFactory,
    RecipientFactory,
    TemplateFactory,
    TopicFactory,
    WebhookEndpointFactory,
    WebhookMessageFactory,
)

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


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    key, raw = ApiKeyFactory.create_with_raw(is_ops=True)
    recipient = RecipientFactory(client=key.client, external_id="user-1", name="Ada")
    DeviceFactory(recipient=recipient, token="device-token-old")
    template = TemplateFactory(client=key.client, key="order_shipped")
    notification = NotificationFactory(client=key.client, template=template)
    DeliveryFactory(notification=notification, recipient=recipient, channel="email")
    dead_delivery = DeliveryFactory(
        notification=notification, recipient=recipient, channel="sms", status="dead"
    )
    dead = DeadLetterFactory(delivery=dead_delivery)
    message = InboxMessageFactory(recipient=recipient)
    TopicFactory(client=key.client, key="order_shipped")  # the `key` parameter's topic
    endpoint = WebhookEndpointFactory(client=key.client)
    # A dead webhook message whose event id is the inbox message's `message_id` (one parameter)
    WebhookMessageFactory(endpoint=endpoint, event_id=str(message.pk), state="dead")
    return {
        "service": f"Bearer {raw}",
        "recipient": f"Recipient {recipient_token_mint(recipient=recipient).token}",
        "params": {
            "notification_id": str(notification.id),
            "dead_letter_id": str(dead.pk),
            "message_id": str(message.pk),
            "endpoint_id": str(endpoint.pk),
            "external_id": "user-1",
            "key": "order_shipped",
            "number": "1",
        },
        "dead_letter_id": dead.pk,
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


def body_operations() -> list[tuple[str, str]]:
    return [(route, method) for route, _, method in BODY_OPERATIONS]


def test_every_body_operation_has_a_valid_body_in_the_table() -> None:
    assert sorted(body_operations()) == sorted(VALID_BODIES)


@pytest.mark.parametrize(("route", "method"), sorted(VALID_BODIES))
def test_the_valid_bodies_are_accepted(route: str, method: str, world: dict[str, Any]) -> None:
    client = client_for(route, world)

    response = getattr(client, method)(
        url_for(route, world), data=valid_body(route, method, world), format="json"
    )

    assert response.status_code in {200, 201, 202}, (response.status_code, response.content)


@pytest.mark.parametrize("hostile", sorted(HOSTILE_EXTRAS))
@pytest.mark.parametrize(("route", "method"), sorted(VALID_BODIES))
def test_a_hostile_member_anywhere_in_the_body_is_a_400(
    route: str,
    method: str,
    hostile: str,
    world: dict[str, Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    raw, fields = HOSTILE_EXTRAS[hostile]
    client = client_for(route, world)
    before = snapshot()

    with django_capture_on_commit_callbacks() as callbacks:
        response = getattr(client, method)(
            url_for(route, world),
            data=with_extra(valid_body(route, method, world), raw),
            content_type="application/json",
        )

    body = assert_error_shape(response, allowed={400})
    if fields is not None:
        assert body["fields"] == fields
    assert snapshot() == before
    assert callbacks == []


def test_nesting_up_to_json_max_depth_is_accepted(world: dict[str, Any]) -> None:
    route = "api/v1/recipients/<str:external_id>"
    client = client_for(route, world)
    # `data` is level 2 of the body: 30 more levels make 32.
    nested: Any = "bottom"
    for _ in range(30):
        nested = [nested]

    response = client.put(url_for(route, world), data={"data": {"deep": nested}}, format="json")

    assert response.status_code == 200, response.content
    stored = Recipient.objects.get(external_id="user-1").data["deep"]
    for _ in range(30):
        stored = stored[0]
    assert stored == "bottom"


def test_deep_nesting_is_named_in_the_message(world: dict[str, Any]) -> None:
    client = client_for("api/v1/notifications", world)

    response = client.post(
        "/api/v1/notifications", data="[" * 1000 + "]" * 1000, content_type="application/json"
    )

    body = assert_error_shape(response, allowed={400})
    assert body == {
        "code": "parse_error",
        "message": "JSON nested deeper than 32 levels.",
        "fields": {},
    }


def test_nul_and_surrogates_in_notification_variables_are_named(
    world: dict[str, Any],
) -> None:
    """The audit's finding: these reached PostgreSQL and were a 500 DataError."""
    client = client_for("api/v1/notifications", world)
    variables = '{"order_id": "A\\u0000", "note": {"x": ["\\ud800"]}}'
    text = f'{{"recipient": "user-1", "template": "order_shipped", "variables": {variables}}}'

    response = client.post("/api/v1/notifications", data=text, content_type="application/json")

    body = assert_error_shape(response, allowed={400})
    assert body["code"] == "invalid"
    assert body["fields"] == {
        "variables": {
            "order_id": [NUL_MESSAGE],
            "note": {"x": {"0": ["Must not contain unpaired surrogate characters (\\ud800)."]}},
        }
    }
    assert Notification.objects.count() == 1  # the fixture's


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*path, i))


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(body))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return copy


def _wrong_type(value: Any) -> Any:
    if isinstance(value, dict):
        return ["x"]
    if isinstance(value, (list, str)):
        return {"x": 1}
    if isinstance(value, bool):
        return [True]
    if isinstance(value, int):
        return 10**100 if value >= 0 else -(10**100)
    return {"x": 1}


FREE_FORM = {"variables", "data"}  # any JSON object is valid there: no wrong type inside


def wrong_type_cases() -> list[tuple[str, str, tuple[Any, ...]]]:
    return [
        (route, method, path)
        for (route, method), body in sorted(VALID_BODIES.items())
        for path, _ in _paths(body)
        if body  # an operation without a body has no types to get wrong
        and not (len(path) > 1 and path[0] in FREE_FORM)
    ]


@pytest.mark.parametrize(("route", "method", "path"), wrong_type_cases())
def test_a_wrong_type_at_any_level_is_a_400(
    route: str,
    method: str,
    path: tuple[Any, ...],
    world: dict[str, Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    body = valid_body(route, method, world)
    value = body
    for part in path:
        value = value[part]
    client = client_for(route, world)
    before = snapshot()

    with django_capture_on_commit_callbacks() as callbacks:
        response = getattr(client, method)(
            url_for(route, world), data=_replaced(body, path, _wrong_type(value)), format="json"
        )

    assert_error_shape(response, allowed={400})
    assert snapshot() == before
    assert callbacks == []


RAW_BODIES: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (b'{"name": "\xff\xfe"}', "application/json"),
    "UTF-8 with a BOM": (b'\xef\xbb\xbf{"name": "x"}', "application/json"),
    "UTF-16 declared, UTF-8 sent": (b'{"name": "x"}', "application/json; charset=utf-16"),
    "a top-level array": (b"[]", "application/json"),
    "a top-level string": (b'"x"', "application/json"),
    "a top-level number": (b"1", "application/json"),
    "a top-level null": (b"null", "application/json"),
    "a raw NUL byte": (b'{"name": "a\x00b"}', "application/json"),
    "a raw control character": (b'{"name": "a\x01b"}', "application/json"),
}
# Operations whose body is optional: one that is not an object (`[]`, `null`) may be read as
# "no body" there; only "never a 5xx" holds for those.
OPTIONAL_BODY = {route for route, method in VALID_BODIES if not VALID_BODIES[(route, method)]} | {
    "api/v1/recipients/<str:external_id>/token"
}


@pytest.mark.parametrize("case", sorted(RAW_BODIES))
@pytest.mark.parametrize(("route", "method"), sorted(VALID_BODIES))
def test_malformed_bodies_are_a_4xx(
    route: str, method: str, case: str, world: dict[str, Any]
) -> None:
    data, content_type = RAW_BODIES[case]
    client = client_for(route, world)
    before = snapshot()

    response = getattr(client, method)(url_for(route, world), data=data, content_type=content_type)

    if route in OPTIONAL_BODY and response.status_code < 300:
        assert case.startswith("a top-level"), response.content
        return
    assert_error_shape(response, allowed={400})
    assert snapshot() == before


def test_latin1_declared_charset_is_decoded_as_declared(world: dict[str, Any]) -> None:
    client = client_for("api/v1/recipients/<str:external_id>", world)

    response = client.put(
        "/api/v1/recipients/user-1",
        data='{"name": "Zoë"}'.encode("latin-1"),
        content_type="application/json; charset=latin-1",
    )

    assert response.status_code == 200, response.content
    assert Recipient.objects.get(external_id="user-1").name == "Zoë"


def test_an_empty_body_with_a_json_content_type_is_a_400_where_a_body_is_required(
    world: dict[str, Any],
) -> None:
    client = client_for("api/v1/notifications", world)

    response = client.post("/api/v1/notifications", data=b"", content_type="application/json")

    body = assert_error_shape(response, allowed={400})
    assert set(body["fields"]) == {"template", "recipient"}


# ---- the request line and headers -------------------------------------------------------

GET_OPERATIONS = sorted({route for route, _, method in OPERATIONS if method == "get"})


@pytest.mark.parametrize("route", GET_OPERATIONS)
@pytest.mark.parametrize("param", ["cursor", "limit", "recipient", "reason", "anything"])
def test_nul_in_a_query_parameter_is_a_400_naming_it(
    route: str, param: str, world: dict[str, Any]
) -> None:
    client = client_for(route, world)

    response = client.get(f"{url_for(route, world)}?{param}=a%00b")

    body = assert_error_shape(response, allowed={400})
    assert body["fields"] == {param: ["Must not contain NUL characters (%00)."]}


# Query strings a GET operation reads (route -> [(query, the field the 400 names)]): values
# out of range, dates past the year 9999 or before year 1 once converted to UTC, garbage.
HOSTILE_QUERIES: dict[str, list[tuple[str, str]]] = {
    "api/v1/analytics": [
        ("group_by=week", "group_by"),
        ("channel=fax", "channel"),
        ("from=2026-11-03&to=2026-11-01", "to"),
        ("from=2000-01-01&to=2026-11-01", "to"),
        ("from=9999-12-31", "to"),
        ("to=0001-01-01", "to"),
        ("from=10000-01-01", "from"),
        ("from=%2B275760-09-13T00:00:00Z", "from"),
        ("from=0001-01-01T00:00:00%2B05:00", "from"),
        ("to=9999-12-31T23:59:59-05:00", "to"),
        ("from=1e30", "from"),
        ("from=" + "9" * 5000, "from"),
        ("template=" + "t" * 101, "template"),
        ("client=" + "c" * 101, "client"),
        ("group_by=%F0%9F%92%A5", "group_by"),
        ("template=a/b/c", "template"),
    ],
    "api/v1/dead-letters": [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
        ("channel=fax", "channel"),
        ("replayed=maybe", "replayed"),
        ("reason=" + "x" * 201, "reason"),
    ],
    "api/v1/inbox": [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
        ("status=bogus", "status"),
        ("unread=maybe", "unread"),
    ],
    "api/v1/notifications": [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=" + "9" * 30, "limit"),
        ("cursor=garbage", "cursor"),
        ("status=bogus", "status"),
        ("channel=fax", "channel"),
        ("recipient=" + "r" * 201, "recipient"),
    ],
    "api/v1/notifications/<uuid:notification_id>/deliveries": [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
    ],
    "api/v1/templates": [
        ("page_size=0", "page_size"),
        ("page_size=abc", "page_size"),
        ("cursor=garbage", "cursor"),
    ],
    "api/v1/templates/<slug:key>/versions": [
        ("page_size=0", "page_size"),
        ("page_size=abc", "page_size"),
        ("cursor=garbage", "cursor"),
    ],
    "api/v1/topics": [
        ("limit=0", "limit"),
        ("limit=" + "9" * 30, "limit"),
        ("cursor=garbage", "cursor"),
    ],
    "api/v1/topics/<str:key>/subscribers": [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
    ],
    "api/v1/webhook-endpoints": [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
    ],
    "api/v1/webhook-endpoints/<str:endpoint_id>/messages": [
        ("limit=0", "limit"),
        ("cursor=garbage", "cursor"),
        ("status=bogus", "status"),
    ],
}


def get_operations_with_query_parameters() -> set[str]:
    """The routes (as in the URLconf) whose GET documents query parameters in the OpenAPI
    schema (`format`, the renderer's choice, aside)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = set()
    for route, schema_path, method in OPERATIONS:
        operation = schema["paths"].get(schema_path, {}).get(method) if method == "get" else None
        names = {p["name"] for p in (operation or {}).get("parameters", []) if p["in"] == "query"}
        if names - {"format"}:
            found.add(route)
    return found


def test_every_get_operation_with_query_parameters_has_hostile_queries() -> None:
    documented = get_operations_with_query_parameters()

    assert "api/v1/analytics" in documented
    assert set(HOSTILE_QUERIES) == documented


@pytest.mark.parametrize(
    ("route", "query", "field"),
    [(route, q, f) for route, cases in HOSTILE_QUERIES.items() for q, f in cases],
)
def test_a_hostile_query_is_a_400_naming_the_parameter(
    route: str, query: str, field: str, world: dict[str, Any]
) -> None:
    client = client_for(route, world)

    response = client.get(f"{url_for(route, world)}?{query}")

    body = assert_error_shape(response, allowed={400})
    assert list(body["fields"]) == [field], body


@pytest.mark.parametrize(("route", "schema_path", "method"), OPERATIONS)
def test_nul_in_the_path_is_a_400(
    route: str, schema_path: str, method: str, world: dict[str, Any]
) -> None:
    client = client_for(route, world)
    url = "/" + PARAM.sub(lambda m: "a%00b", route) if "<" in route else url_for(route, world)
    if "<" not in route:
        url += "%00"

    response = getattr(client, method)(url)

    body = assert_error_shape(response, allowed={400})
    assert body["fields"] == {"path": ["Must not contain NUL characters (%00)."]}


def test_nul_in_the_idempotency_key_header_is_a_400(world: dict[str, Any]) -> None:
    route = "api/v1/notifications"
    client = client_for(route, world)
    before = snapshot()

    response = client.post(
        "/api/v1/notifications",
        data=valid_body(route, "post", world),
        format="json",
        HTTP_IDEMPOTENCY_KEY="key\x00one",
    )

    body = assert_error_shape(response, allowed={400})
    assert body["fields"] == {"Idempotency-Key": ["Must not contain NUL characters (%00)."]}
    assert snapshot() == before


@pytest.mark.parametrize(
    "key", ["k" * 256, "k" * 100_000, "   ", "key\r\nX-Injected: 1", "key\x7f", "key\x1b[0m"]
)
def test_a_bad_idempotency_key_header_is_a_400(world: dict[str, Any], key: str) -> None:
    route = "api/v1/notifications"
    client = client_for(route, world)
    before = snapshot()

    response = client.post(
        "/api/v1/notifications",
        data=valid_body(route, "post", world),
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )

    body = assert_error_shape(response, allowed={400})
    assert set(body["fields"]) == {"idempotency_key"}
    assert snapshot() == before


def test_a_very_long_header_value_is_never_a_500(world: dict[str, Any]) -> None:
    client = client_for("api/v1/notifications", world)

    response = client.get("/api/v1/notifications", HTTP_X_TRACE="t" * 200_000)

    assert response.status_code == 200


# ---- sizes and dates of a notification -------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("send_at", "0001-01-01T00:00:00+05:00"),
        ("send_at", "9999-12-31T23:59:59-05:00"),
        ("send_at", "10000-01-01T00:00:00Z"),
        ("send_at", "+275760-09-13T00:00:00Z"),
        ("send_at", 1e30),
        ("send_at", 10**100),
        # send-time optimisation: "best_time" is the one word accepted, never beside escalation
        # (which the valid body has), and its holdout a percentage, only with it
        ("send_at", "best_time"),
        ("send_at", "BEST_TIME"),
        ("send_at", "best_time\u0000"),
        ("send_at", ["best_time"]),
        ("send_at", {"best_time": True}),
        ("best_time_holdout", 101),
        ("best_time_holdout", -1),
        ("best_time_holdout", 10**100),
        ("best_time_holdout", "50"),
        ("best_time_holdout", 50),
        ("priority", 10**100),
        ("priority", 1e30),
        ("recipient", "u" * 201),
        ("recipients", ["u" * 201]),
        ("recipients", ["user-1"] * 1001),
        ("template", "t" * 101),
        ("category", "c" * 51),
        ("idempotency_key", "k" * 256),
        ("channels", ["email"] * 10_000 + ["x"]),
    ],
)
def test_out_of_range_notification_fields_are_a_400(
    world: dict[str, Any], field: str, value: Any
) -> None:
    route = "api/v1/notifications"
    client = client_for(route, world)
    before = snapshot()

    response = client.post(
        "/api/v1/notifications",
        data={**valid_body(route, "post", world), field: value},
        format="json",
    )

    body = assert_error_shape(response, allowed={400})
    # A bad item of a list is named by its index: `recipients[0]`.
    assert any(k == field or k.startswith(f"{field}[") for k in body["fields"]), body
    assert snapshot() == before


@pytest.mark.parametrize("send_at", ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_send_at_far_in_the_past_or_future_is_never_a_500(
    world: dict[str, Any], send_at: str
) -> None:
    route = "api/v1/notifications"
    client = client_for(route, world)

    response = client.post(
        "/api/v1/notifications",
        data={**valid_body(route, "post", world), "send_at": send_at},
        format="json",
    )

    assert response.status_code in {202, 400}, response.content
