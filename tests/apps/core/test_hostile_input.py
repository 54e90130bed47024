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

from apps.deliveries.models import Notification
from apps.recipients.models import Recipient
from tests.apps.core.hostile import (
    HOSTILE_EXTRAS,
    NUL_MESSAGE,
    VALID_BODIES,
    assert_error_shape,
    client_for,
    snapshot,
    url_for,
    valid_body,
    with_extra,
)
from tests.apps.core.test_error_shape_everywhere import BODY_OPERATIONS


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
