"""Hostile input in the query string, the path and the headers of every API operation: a 4xx in
the error shape, never a 500 (the bodies: test_hostile_input.py)."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.apps.core.hostile import (
    assert_error_shape,
    client_for,
    snapshot,
    url_for,
    valid_body,
)
from tests.apps.core.test_error_shape_everywhere import OPERATIONS, PARAM

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
