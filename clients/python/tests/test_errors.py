"""Every error the client raises is a NotifierError: answers that cannot be read and httpx's
errors that are not retried are typed too (on a real socket)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier_client import (
    APIConnectionError,
    InvalidResponseError,
    NotifierClient,
    NotifierError,
    RetryPolicy,
)
from tests.scripted import Reply, ScriptedServer

QUICK = RetryPolicy(max_attempts=3, backoff_base=0.05, backoff_cap=0.1)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(list(request.param))
    yield scripted
    scripted.stop()


@pytest.mark.parametrize(
    "server",
    [
        [Reply(202, b"<html>Accepted, says a proxy</html>")],
        [Reply(202, b'{"id": "n-1", "stat')],  # cut short
        [Reply(202, ["not", "an", "object"])],
        [Reply(202, b"\xff\xfe{}")],  # not UTF-8
    ],
    indirect=True,
    ids=["html", "truncated", "a list", "not utf-8"],
)
def test_a_success_that_is_not_json_is_an_invalid_response(server: ScriptedServer) -> None:
    with (
        NotifierClient(server.url, "key", retry=QUICK) as client,
        pytest.raises(InvalidResponseError) as invalid,
    ):
        client.send("welcome", recipient="user-1", idempotency_key="k-9")

    assert isinstance(invalid.value, NotifierError)
    assert invalid.value.status == 202
    assert invalid.value.idempotency_key == "k-9"  # it may have been accepted
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "server", [[Reply(200, b"not gzip at all", {"Content-Encoding": "gzip"})]], indirect=True
)
def test_a_body_that_does_not_decode_is_an_invalid_response(server: ScriptedServer) -> None:
    with (
        NotifierClient(server.url, "key", retry=QUICK) as client,
        pytest.raises(InvalidResponseError, match="GET"),
    ):
        client.get_topic("t")

    assert len(server.seen) == 1


def test_an_unsupported_scheme_is_a_connection_error_at_once() -> None:
    with (
        NotifierClient("ftp://127.0.0.1:1", "key", retry=QUICK) as client,
        pytest.raises(APIConnectionError, match=r"UnsupportedProtocol.*\(1 attempts\)"),
    ):
        client.get_topic("t")


@pytest.mark.parametrize("server", [[Reply(200, {"key": "t"})]], indirect=True)
def test_a_request_httpx_will_not_write_is_a_connection_error(server: ScriptedServer) -> None:
    # A key with a line break cannot be a header: h11 refuses it (LocalProtocolError).
    with (
        NotifierClient(server.url, "key\r\nX-Injected: 1", retry=QUICK) as client,
        pytest.raises(APIConnectionError, match=r"\(1 attempts\)"),
    ):
        client.get_topic("t")

    assert server.seen == []


def test_a_base_url_that_is_not_a_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a URL"):
        NotifierClient("http://example.com:port", "key")
