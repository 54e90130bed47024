"""Erasing a recipient takes their notifications out of open digest windows (nothing is sent to
them later), closes those windows empty and blanks every window's key (rendered from their
data)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries import digests as digests_module
from apps.deliveries import services
from apps.deliveries.digests import digest_close, digests_close_due
from apps.deliveries.models import Delivery, DeliveryStatus, Digest, Notification
from tests.factories import comment_template


@pytest.mark.django_db
def test_erasure_takes_digested_items_out_of_their_windows_and_blanks_the_keys(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given two comments in an open window keyed by the recipient's name, and a closed window
    comment_template(
        demo["client"], digest={"window": "1h", "key": "{{ recipient.name }}/{{ post_id }}"}
    )

    def comment(n: int, post: str) -> None:
        variables = {"post_id": post, "post_title": "P", "author": f"a{n}", "text": "t"}
        body = {"recipient": "user-1", "template": "new_comment", "variables": variables}
        response = api.post("/api/v1/notifications", {**body, "channels": ["email"]}, format="json")
        assert response.status_code == 202, response.content

    comment(0, "old")
    old = Digest.objects.get()
    assert digest_close(digest_id=str(old.pk), now=old.closes_at) == "sent"
    comment(1, "p1")
    comment(2, "p1")
    window = Digest.objects.get(closed_at__isnull=True)
    assert window.key == "Ada/p1"

    # When the recipient is erased
    assert api.delete("/api/v1/recipients/user-1").status_code == 204

    # Then their items left the window with the erasure reason, and it closed empty
    items = Delivery.objects.filter(digest=window).order_by("created_at")
    assert [(d.status, d.reason) for d in items] == [
        (DeliveryStatus.CANCELLED, "recipient erased"),
        (DeliveryStatus.CANCELLED, "recipient erased"),
    ]
    window.refresh_from_db()
    assert (window.outcome, window.item_count) == ("empty", 0)
    assert window.closed_at is not None
    # And no window keeps their name, and nothing more is sent
    assert set(Digest.objects.values_list("key", flat=True)) == {""}
    assert digest_close(digest_id=str(window.pk), now=timezone.now()) == ""
    assert Notification.objects.count() == 4  # three comments and the one digest sent before


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_a_comment_joining_while_its_recipient_is_erased_is_not_left_in_a_closed_window(
    api_key: tuple[Any, str], demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an open window with one comment, and a second comment's request that has joined it
    # (its window locked FOR KEY SHARE, its delivery inserted) and not yet committed
    comment_template(demo["client"], digest={"window": "1h", "key": "{{ post_id }}"})
    body = {
        "recipient": "user-1",
        "template": "new_comment",
        "channels": ["email"],
        "variables": {"post_id": "p1", "post_title": "P", "author": "a", "text": "t"},
    }

    def client() -> APIClient:
        browser = APIClient()
        browser.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
        return browser

    assert client().post("/api/v1/notifications", body, format="json").status_code == 202
    window = Digest.objects.get()
    joined, commit = threading.Event(), threading.Event()
    insert = services.notification_insert

    def paused(**kwargs: Any) -> None:
        insert(**kwargs)
        joined.set()
        assert commit.wait(30)

    monkeypatch.setattr(services, "notification_insert", paused)
    answers: dict[str, int] = {}

    def in_thread(name: str, call: Callable[[], Any]) -> threading.Thread:
        def run() -> None:
            try:
                answers[name] = call().status_code
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    post = in_thread("post", lambda: client().post("/api/v1/notifications", body, format="json"))
    assert joined.wait(30)

    # When the recipient is erased meanwhile (it waits for the window, or is done), and then
    # the request commits
    erase = in_thread("erase", lambda: client().delete("/api/v1/recipients/user-1"))
    deadline = time.monotonic() + 30
    while erase.is_alive() and not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    commit.set()
    post.join(60)
    erase.join(60)

    # Then both succeed, and no item is left `digested` in the window the erasure closed
    assert answers == {"post": 202, "erase": 204}
    window.refresh_from_db()
    assert (window.outcome, window.item_count) == ("empty", 0)
    items = Delivery.objects.filter(digest=window).order_by("created_at")
    assert [(d.status, d.reason) for d in items] == [
        (DeliveryStatus.CANCELLED, "recipient erased"),
        (DeliveryStatus.CANCELLED, "recipient erased"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_digest_the_sweep_sends_while_its_recipient_is_erased_is_cancelled(
    api: APIClient, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a due window that the sweep has locked and made its delivery for, not yet committed
    comment_template(demo["client"], digest={"window": "1h", "key": "{{ post_id }}"})
    variables = {"post_id": "p1", "post_title": "P", "author": "a", "text": "t"}
    body = {"recipient": "user-1", "template": "new_comment", "variables": variables}
    response = api.post("/api/v1/notifications", {**body, "channels": ["email"]}, format="json")
    assert response.status_code == 202, response.content
    window = Digest.objects.get()
    made, commit = threading.Event(), threading.Event()
    deliver = digests_module.digest_deliver

    def paused(digest: Digest, **kwargs: Any) -> Delivery:
        delivery = deliver(digest, **kwargs)
        made.set()
        assert commit.wait(30)
        return delivery

    monkeypatch.setattr(digests_module, "digest_deliver", paused)
    answers: dict[str, Any] = {}

    def in_thread(name: str, call: Callable[[], Any]) -> threading.Thread:
        def run() -> None:
            try:
                answers[name] = call()
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    sweep = in_thread("sweep", lambda: digests_close_due(now=window.closes_at))
    assert made.wait(30)

    # When the recipient is erased meanwhile (it waits for the window), and the sweep commits
    erase = in_thread("erase", lambda: api.delete("/api/v1/recipients/user-1").status_code)
    deadline = time.monotonic() + 30
    while erase.is_alive() and not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    commit.set()
    sweep.join(60)
    erase.join(60)

    # Then the window was sent, and the erasure cancelled the digest's delivery before it went
    assert answers == {"sweep": 1, "erase": 204}
    window.refresh_from_db()
    assert window.outcome == "sent"
    digest = Delivery.objects.get(pk=window.delivery_id)
    assert (digest.status, digest.reason) == (DeliveryStatus.CANCELLED, "recipient erased")
