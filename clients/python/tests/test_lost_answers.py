"""Answers lost after the real service acted (tests/lossy.py between the client and it): a send
is retried with its key and creates one notification; a subscribe is not retried."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from notifier_client import APIConnectionError, NotifierClient, RetryPolicy
from tests.conftest import Service
from tests.lossy import LossyProxy

QUICK = RetryPolicy(max_attempts=3, backoff_base=0.1, backoff_cap=0.3)


@pytest.fixture
def proxy(service: Service) -> Iterator[LossyProxy]:
    lossy = LossyProxy(service.url, lose=1)
    yield lossy
    lossy.stop()


@pytest.fixture
def lossy(service: Service, proxy: LossyProxy) -> Iterator[NotifierClient]:
    with NotifierClient(proxy.url, service.api_key, retry=QUICK) as through:
        yield through


def test_a_send_whose_answer_is_lost_creates_one_notification(
    lossy: NotifierClient, proxy: LossyProxy, client: NotifierClient, user: str
) -> None:
    variables = {"order_id": "A-7"}
    accepted = lossy.send("welcome", recipient=user, channels=["inapp"], variables=variables)

    assert (proxy.lost, proxy.forwarded) == (1, 1)  # it reached the service twice

    created = client.list_notifications(recipient=user).results
    assert [n["id"] for n in created] == [accepted["id"]]  # the retry got the original


def test_a_subscribe_whose_answer_is_lost_is_not_repeated(
    lossy: NotifierClient, proxy: LossyProxy, client: NotifierClient, user: str
) -> None:
    key = f"lost-{uuid.uuid4().hex[:8]}"
    client.put_topic(key)

    with pytest.raises(APIConnectionError, match="1 attempts"):
        lossy.add_subscribers(key, [user])
    assert (proxy.lost, proxy.forwarded) == (1, 0)

    # It took effect (once): the application is told it may have, and can check.
    assert [s["recipient"] for s in client.iter_subscribers(key)] == [user]
    assert client.add_subscribers(key, [user])["added"] == 0
