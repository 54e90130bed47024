"""The whole API against its own OpenAPI schema, property-based (schemathesis, in-process WSGI).

For every operation the schema documents, schemathesis generates valid and invalid requests
(bodies, query strings, path parameters, headers) and checks each answer: never a 5xx, the
status code documented, the body and headers matching the documented schema. Requests carry a
valid credential of the kind the operation documents (an ops API key, or a recipient token).
A second test puts what schemathesis never generates into every JSON body (NUL characters,
lone surrogates, nesting past JSON_MAX_DEPTH) and NUL into every string query parameter.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apps.recipients.tokens import recipient_token_mint
from apps.webhooks.services import endpoint_create, endpoint_ping
from config.wsgi import application
from tests.factories import (
    ApiKeyFactory,
    DeadLetterFactory,
    DeliveryEventFactory,
    DeliveryFactory,
    NotificationFactory,
    RecipientFactory,
    TemplateFactory,
)

# Examples per operation and generation mode: enough to find crashes, bounded for CI time.
MAX_EXAMPLES = 15

CONFIG = schemathesis.Config.from_dict(
    {
        # Unknown query parameters are ignored, as by most HTTP APIs: not a rejection case.
        "generation": {"allow-extra-parameters": False},
        "checks": {
            # 413 (body too large) is a rejection too.
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429]
            },
            "positive_data_acceptance": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)


@pytest.fixture
def in_test_transaction(db: None) -> Iterator[None]:
    """Serve WSGI requests on the test's connection, as Django's test client does.

    A real WSGI request ends with `close_old_connections`, which would close the connection
    that holds the test's transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(in_test_transaction: None) -> dict[str, Any]:
    """An ops key (sees every client's data), a recipient token, and real resources that
    generated requests can name: recipients, a template, a notification, a dead letter, a
    webhook endpoint and its message."""
    key, raw = ApiKeyFactory.create_with_raw(is_ops=True)
    recipient = RecipientFactory(client=key.client, external_id="user-1", name="Ada")
    RecipientFactory(client=key.client, external_id="user-2")
    template = TemplateFactory(client=key.client, key="order_shipped")
    notification = NotificationFactory(client=key.client, template=template)
    delivery = DeliveryFactory(notification=notification, recipient=recipient)
    DeliveryEventFactory(delivery=delivery)
    dead_delivery = DeliveryFactory(
        notification=notification, recipient=recipient, channel="sms", status="dead"
    )
    dead = DeadLetterFactory(delivery=dead_delivery)
    token = recipient_token_mint(recipient=recipient).token
    endpoint = endpoint_create(
        client=key.client,
        url="https://hooks.example.com/x",
        events_=["delivery.sent"],
        description="",
        include_content=False,
    )
    ping = endpoint_ping(endpoint=endpoint)
    return {
        "auth": {"Bearer": f"Bearer {raw}", "Recipient": f"Recipient {token}"},
        "ids": {
            "notification_id": str(notification.id),
            "dead_letter_id": dead.pk,
            "external_id": "user-1",
            "key": "order_shipped",
            "number": 1,
            "endpoint_id": str(endpoint.pk),
            "message_id": ping.event_id,
        },
    }


_auth_turn = itertools.count()


def auth_header(case: Any, world: dict[str, Any]) -> dict[str, str]:
    """A credential the operation documents; where it takes either kind, each in turn."""
    security = case.operation.definition.raw.get("security", [{"Bearer": []}])
    schemes = [name for alternative in security for name in alternative]
    if not schemes:
        return {}
    return {"Authorization": world["auth"][schemes[next(_auth_turn) % len(schemes)]]}


_turn = itertools.count()


def name_real_resources(case: Any, world: dict[str, Any]) -> None:
    """Every other valid case addresses resources that exist, so that the success paths are
    exercised and checked too (random ids almost always answer 404)."""
    if not case.path_parameters or case.meta is None:
        return
    if case.meta.generation.mode != GenerationMode.POSITIVE or next(_turn) % 2:
        return
    for name in case.path_parameters:
        if name in world["ids"]:
            case.path_parameters[name] = world["ids"][name]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_schema(case: Any, world: dict[str, Any]) -> None:
    name_real_resources(case, world)
    headers = auth_header(case, world)
    # Generous throttle: this test is about answers, not about the rate limit.
    rates = {"api_key": "100000/min"}
    with override_settings(
        REST_FRAMEWORK={**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


# ---- hostile strings and nesting, which schemathesis does not generate by itself ----------

HOSTILE_EXAMPLES = 25
JSON_MAX_DEPTH = 32
# Characters PostgreSQL cannot store (NUL) or UTF-8 cannot encode (lone surrogates), with
# ordinary ones around them.
BAD_CHARS = ["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]
hostile_strings = st.builds(
    lambda before, bad, after: before + bad + after,
    st.text(max_size=5),
    st.sampled_from(BAD_CHARS),
    st.text(max_size=5),
)
# NUL only: a query string or a path is percent-encoded UTF-8, where a lone surrogate cannot
# even be written.
nul_strings = st.builds(
    lambda before, after: before + "\x00" + after, st.text(max_size=5), st.text(max_size=5)
)


def _nested(depth: int, leaf: Any, as_object: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_object else [value]
    return value


hostile_values = st.one_of(
    hostile_strings,
    st.dictionaries(hostile_strings, st.integers(), min_size=1, max_size=2),
    st.builds(
        _nested,
        st.integers(min_value=JSON_MAX_DEPTH + 1, max_value=300),
        st.one_of(st.text(max_size=3), st.integers()),
        st.booleans(),
    ),
)


def _string_leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_leaves(v, (*path, i))]
    return []


def _with_hostile(body: Any, data: st.DataObject) -> Any:
    """`body` with a hostile value put in: a string leaf replaced, or a member added."""
    leaves = _string_leaves(body)
    if leaves and data.draw(st.booleans(), label="replace a string"):
        path = data.draw(st.sampled_from(leaves), label="string to replace")
        node = body
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = data.draw(hostile_strings, label="hostile string")
        return body
    hostile = data.draw(hostile_values, label="hostile value")
    if isinstance(body, dict):
        return {**body, data.draw(st.text(max_size=5) | hostile_strings, label="key"): hostile}
    if isinstance(body, list):
        return [*body, hostile]
    return {"value": body, "extra": hostile}


def _string_query_parameters(case: Any) -> list[str]:
    return [
        p["name"]
        for p in case.operation.definition.raw.get("parameters", [])
        if p.get("in") == "query" and p.get("schema", {}).get("type") == "string"
    ]


# Only generated cases: a test with its own strategies cannot take the schema's examples.
hostile_schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json",
    application,
    config=schemathesis.Config.from_dict(
        {"phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}}}
    ),
)


@hostile_schema.parametrize()
@hostile_schema.given(data=st.data())
@settings(
    max_examples=HOSTILE_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_hostile_strings_and_nesting_are_never_a_server_error(
    case: Any, data: st.DataObject, world: dict[str, Any]
) -> None:
    """Every operation with a JSON body gets NUL, lone surrogates or nesting past
    JSON_MAX_DEPTH somewhere in it; every string query parameter gets a NUL. Never a 5xx, and
    a body with any of them is never accepted."""
    body_sent = isinstance(case.body, (dict, list)) and case.media_type == "application/json"
    query = _string_query_parameters(case)
    if not body_sent and not query:
        return
    name_real_resources(case, world)
    if body_sent:
        case.body = _with_hostile(case.body, data)
    if query and (not body_sent or data.draw(st.booleans(), label="hostile query too")):
        name = data.draw(st.sampled_from(query), label="query parameter")
        case.query = {**(case.query or {}), name: data.draw(nul_strings, label="query value")}
    # Sent by Django's test client: schemathesis re-validates what it sends, as UTF-8, and
    # cannot encode a lone surrogate. json.dumps writes it as the escape a client would send.
    client = Client(raise_request_exception=False)
    url = case.formatted_path + "?" + urlencode(case.query or {}, doseq=True)
    kwargs: dict[str, Any] = {"headers": auth_header(case, world)}
    if body_sent:
        kwargs |= {"data": json.dumps(case.body), "content_type": "application/json"}
    rates = {"api_key": "100000/min"}
    with override_settings(
        REST_FRAMEWORK={**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        response = getattr(client, case.method.lower())(url, **kwargs)

    assert response.status_code < 500, (response.status_code, response.content[:300])
    assert response.status_code >= 400, (case.body, case.query, response.content[:300])
    assert set(response.json()) == {"code", "message", "fields"}
