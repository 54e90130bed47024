"""The whole API against its own OpenAPI schema, property-based (schemathesis, in-process WSGI).

For every operation the schema documents, schemathesis generates valid and invalid requests
(bodies, query strings, path parameters, headers) and checks each answer: never a 5xx, the
status code documented, the body and headers matching the documented schema. Requests carry a
valid credential of the kind the operation documents (an ops API key, or a recipient token).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apps.recipients.tokens import recipient_token_mint
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
    generated requests can name: recipients, a template, a notification, a dead letter."""
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
    return {
        "auth": {"Bearer": f"Bearer {raw}", "Recipient": f"Recipient {token}"},
        "ids": {
            "notification_id": str(notification.id),
            "dead_letter_id": dead.pk,
            "external_id": "user-1",
            "key": "order_shipped",
            "number": 1,
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
