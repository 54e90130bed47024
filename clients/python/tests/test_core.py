"""What the clients share, without a server: Retry-After, backoff, errors, request shapes."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import httpx
import pytest

from notifier_client import (
    APIError,
    NotifierClient,
    PermissionDeniedError,
    RetryPolicy,
    ServerError,
    calls,
    parse_retry_after,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thursday, 01-Jan-26 12:00:10 GMT", 10.0),  # RFC 850, obsolete but allowed
        ("Thu Jan  1 12:00:05 2026", 5.0),  # asctime: no zone, means GMT
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),  # past
        (None, None),
        ("", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("-5", None),  # not delta-seconds (float() would read these)
        ("+5", None),
        ("1_000", None),
        ("5.", None),
        ("1e3", None),
        ("1e400", None),
        ("0x10", None),
        ("9" * 400, math.inf),  # digits past a float: longer than any max_retry_after
    ],
)
def test_retry_after_in_both_forms(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=0.5, backoff_cap=4.0)

    waits = {attempt: [policy.wait(attempt, None) for _ in range(200)] for attempt in (1, 3, 9)}

    assert all(0 <= w <= 0.5 for w in waits[1])  # type: ignore[operator]
    assert all(0 <= w <= 2.0 for w in waits[3])  # type: ignore[operator]
    assert all(0 <= w <= 4.0 for w in waits[9])  # type: ignore[operator]
    assert len(set(waits[9])) > 100  # jittered, not a fixed schedule
    assert policy.wait(10, None) is None  # the last attempt is not followed by another


def test_a_huge_retry_after_is_raised_at_once() -> None:
    policy = RetryPolicy(max_retry_after=60)

    assert policy.wait(1, parse_retry_after("9" * 400)) is None
    assert policy.wait(1, parse_retry_after("99999999999999999999")) is None
    assert policy.wait(1, parse_retry_after("-5")) is not None  # unreadable: the backoff


def test_retry_after_is_honoured_never_sooner() -> None:
    policy = RetryPolicy(backoff_base=0.5, max_retry_after=60)

    assert all(7 <= policy.wait(1, 7) <= 7.5 for _ in range(100))  # type: ignore[operator]
    assert policy.wait(1, 61) is None


def test_max_attempts_must_allow_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)


def answering(status: int, body: bytes, seen: list[httpx.Request]) -> NotifierClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body)

    return NotifierClient(
        "https://notify.example.com/", "k", transport=httpx.MockTransport(handler)
    )


def test_an_error_body_that_is_not_the_error_shape_still_is_typed() -> None:
    client = answering(502, b"<html>Bad gateway</html>", [])

    with pytest.raises(ServerError) as error:
        client.get_topic("t")

    assert (error.value.status, error.value.code) == (502, "http_502")
    assert "Bad gateway" in error.value.message


def test_an_unlisted_4xx_is_an_api_error_and_403_is_permission_denied() -> None:
    with pytest.raises(APIError) as error:
        answering(415, b'{"code": "unsupported_media_type", "message": "No."}', []).get_topic("t")
    assert type(error.value) is APIError
    assert error.value.code == "unsupported_media_type"
    with pytest.raises(PermissionDeniedError):
        answering(403, b'{"code": "permission_denied", "message": "Ops only."}', []).get_topic("t")


def test_requests_have_the_api_shape() -> None:
    seen: list[httpx.Request] = []
    client = answering(202, b'{"id": "n"}', seen)
    at = datetime(2030, 1, 1, 9, 0, tzinfo=timezone.utc)

    client.send_bulk(
        "order_shipped",
        ["u-1", {"id": "u-2", "email": "u2@example.com"}],
        channels=("email",),
        send_at=at,
        idempotency_key="k-1",
    )
    client.remove_device("a b", "tok/1")
    client.list_dead_letters(replayed=False, channel="sms")

    send, remove, dead = seen
    assert str(send.url) == "https://notify.example.com/api/v1/notifications"
    assert send.headers["idempotency-key"] == "k-1"
    assert send.headers["authorization"] == "Bearer k"
    assert json.loads(send.content) == {
        "template": "order_shipped",
        "recipients": ["u-1", {"id": "u-2", "email": "u2@example.com"}],
        "channels": ["email"],
        "send_at": "2030-01-01T09:00:00+00:00",
    }
    assert remove.url.raw_path == b"/api/v1/recipients/a%20b/devices/tok%2F1"
    assert "idempotency-key" not in remove.headers  # only POST /notifications has one
    assert dead.url.params == httpx.QueryParams({"replayed": "false", "channel": "sms"})


def test_a_new_idempotency_key_per_call() -> None:
    seen: list[httpx.Request] = []
    client = answering(202, b'{"id": "n"}', seen)

    client.send("t", recipient="u")
    client.send("t", recipient="u")

    assert seen[0].headers["idempotency-key"] != seen[1].headers["idempotency-key"]


def test_the_next_page_is_asked_of_the_configured_host() -> None:
    pages = {
        None: {
            "next": "http://internal:8000/api/v1/topics?cursor=c2&limit=1",
            "results": [{"n": 1}],
        },
        "c2": {"next": None, "results": [{"n": 2}]},
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    client = NotifierClient(
        "https://notify.example.com", "k", transport=httpx.MockTransport(handler)
    )

    assert list(client.iter_topics(limit=1)) == [{"n": 1}, {"n": 2}]
    assert [r.url.host for r in seen] == ["notify.example.com"] * 2
    assert seen[1].url.params == httpx.QueryParams({"limit": "1", "cursor": "c2"})


@pytest.mark.parametrize(
    "build",
    [
        lambda: calls.send("t"),
        lambda: calls.send("t", recipient="u", topic="k"),
        lambda: calls.send("t", recipient="u", send_at=datetime(2030, 1, 1)),  # noqa: DTZ001
        lambda: calls.get_recipient(""),
        lambda: calls.replay_dead_letters(),
    ],
    ids=["nobody", "both", "naive send_at", "empty id", "replay what"],
)
def test_calls_refuse_what_cannot_be_right(build: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each has its own message
        build()  # type: ignore[operator]
