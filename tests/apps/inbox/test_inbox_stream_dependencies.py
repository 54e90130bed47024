"""The inbox event stream (SSE) when Redis (its channel layer) or the database does not answer:
a 503 with Retry-After before any event, never a 200 whose stream ends at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from asgiref.sync import async_to_sync
from django.db import OperationalError
from django.test import AsyncClient

from apps.inbox import stream
from tests.apps.inbox.test_inbox_stream import group_members, token_for
from tests.factories import RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import free_port

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def no_redis_server(django_db_setup: None) -> Iterator[AsgiServer]:
    """uvicorn whose Redis (the channel layer's) is a port nothing listens on; one stream per
    recipient, so that a slot not given back would show as a 429."""
    proc = AsgiServer(
        env={
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/6",
            "INBOX_STREAMS_PER_RECIPIENT": "1",
        },
        name="inbox-stream-no-redis",
    )
    yield proc
    proc.stop()


def test_the_channel_layer_down_is_503_with_retry_after(no_redis_server: AsgiServer) -> None:
    recipient = RecipientFactory()
    headers = {"Authorization": f"Recipient {token_for(recipient)}"}

    answers = [
        requests.get(f"{no_redis_server.url}/api/v1/inbox/stream", headers=headers, timeout=10)
        for _ in range(2)
    ]

    for response in answers:  # the second is no 429: the first gave its slot back
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) > 0
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["code"] == "unavailable"


def test_the_database_down_after_joining_is_503_and_leaves_the_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipient = RecipientFactory()

    def down(*args: Any) -> Any:
        raise OperationalError("connection to server at 127.0.0.1 failed")

    monkeypatch.setattr(stream, "inbox_snapshot", down)

    response = async_to_sync(AsyncClient().get)(
        "/api/v1/inbox/stream", headers={"Authorization": f"Recipient {token_for(recipient)}"}
    )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "unavailable"
    assert group_members(recipient) == 0
