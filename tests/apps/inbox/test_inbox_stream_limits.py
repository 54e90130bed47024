"""What an open event stream (SSE) costs the ASGI process: no thread of its own, and at most
INBOX_STREAMS_PER_RECIPIENT of them per recipient. Against a real uvicorn process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apps.inbox.test_inbox_stream import token_for
from tests.factories import RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import wait_until
from tests.support.sse import InboxStream

pytestmark = [pytest.mark.django_db(transaction=True)]

PER_RECIPIENT = 3
STREAMS = 24


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[AsgiServer]:
    proc = AsgiServer(
        env={"INBOX_STREAMS_PER_RECIPIENT": str(PER_RECIPIENT)}, name="inbox-stream-limits"
    )
    yield proc
    proc.stop()


def threads(server: AsgiServer) -> int:
    return len(list(Path(f"/proc/{server.proc.pid}/task").iterdir()))


def test_open_streams_do_not_each_hold_a_thread(server: AsgiServer) -> None:
    recipients = [RecipientFactory() for _ in range(STREAMS // PER_RECIPIENT)]
    with InboxStream(server.url, token_for(recipients[0])) as warm:
        warm.data()  # the executor and the database connections exist already
    before = threads(server)

    with contextlib.ExitStack() as stack:
        for recipient in recipients:
            token = token_for(recipient)
            for _ in range(PER_RECIPIENT):
                stream = stack.enter_context(InboxStream(server.url, token))
                assert stream.data()["type"] == "unread_count"  # the stream is past its reads
        during = threads(server)

    # A thread per stream would be STREAMS more; the loop's shared executor is a few at most.
    assert during - before < STREAMS // 2, (before, during)


def test_beyond_the_cap_a_recipient_gets_429_with_retry_after(server: AsgiServer) -> None:
    recipient, other = RecipientFactory(), RecipientFactory()
    token = token_for(recipient)

    with contextlib.ExitStack() as stack:
        for _ in range(PER_RECIPIENT):
            stack.enter_context(InboxStream(server.url, token)).data()
        with InboxStream(server.url, token) as refused:
            response = refused.response
            body = response.json()
        with InboxStream(server.url, token_for(other)) as others:
            assert others.response.status_code == 200  # the cap is per recipient

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert body["code"] == "throttled"

    # Closed streams give their slots back.
    def reopened() -> bool:
        with InboxStream(server.url, token) as again:
            return bool(again.response.status_code == 200)

    wait_until(reopened, timeout=10)
