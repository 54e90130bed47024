"""The production serving arrangement, for real: the committed nginx config in front of gunicorn
(REST) and uvicorn (/ws/, the event stream), and behind a TLS load balancer under the production
settings. Against the test database and Redis. (The processes on their own:
test_serving_processes.py.)"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from apps.deliveries.models import Notification
from apps.inbox.models import InboxMessage
from apps.inbox.realtime import publish_notification
from apps.recipients.tokens import recipient_token_mint
from harness.serving import Gunicorn, Nginx, Uvicorn
from tests.support.processes import wait_until
from tests.support.serving import API, env, post
from tests.support.sse import InboxStream
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def arrangement(django_db_setup: None) -> Iterator[tuple[Gunicorn, Uvicorn, Nginx]]:
    rest = Gunicorn(
        env(ADMISSION_MAX_QUEUE_MS="10000"), workers=1, threads=4, name="gunicorn-proxied"
    )
    ws = Uvicorn(env(), name="uvicorn-proxied")
    proxy = Nginx(rest=f"127.0.0.1:{rest.port}", ws=f"127.0.0.1:{ws.port}")
    yield rest, ws, proxy
    for proc in (proxy, ws, rest):
        proc.stop()


def test_rest_goes_to_gunicorn_and_websockets_to_uvicorn_through_one_proxy(
    arrangement: tuple[Gunicorn, Uvicorn, Nginx], sender: dict[str, Any]
) -> None:
    _, ws, proxy = arrangement
    token = recipient_token_mint(recipient=sender["recipient"]).token

    # A WebSocket through the proxy: gunicorn cannot upgrade, so this is uvicorn.
    with InboxSocket(proxy.ws_url, token) as socket:
        first = json.loads(socket.conn.recv(timeout=10))
    # The REST call through the proxy still works with uvicorn gone: gunicorn served it.
    ws.stop()
    response = post(proxy.url, sender, "via-proxy")

    assert first["type"] == "unread_count"  # what the inbox socket says first
    assert response.status_code == 202, response.text
    assert list(Notification.objects.values_list("variables", flat=True)) == [
        {"order_id": "via-proxy"}
    ]


def test_the_event_stream_goes_to_uvicorn_unbuffered_through_the_proxy(
    arrangement: tuple[Gunicorn, Uvicorn, Nginx], sender: dict[str, Any]
) -> None:
    rest, _, proxy = arrangement
    recipient = sender["recipient"]
    token = recipient_token_mint(recipient=recipient).token

    # Through the proxy the stream is uvicorn's: events arrive as they happen, not when a
    # buffer fills (one live message is far smaller than nginx's buffers).
    with InboxStream(proxy.url, token) as stream:
        counts = stream.data()
        message = InboxMessage.objects.create(recipient=recipient, title="t", body="live")
        publish_notification(message)
        live = stream.data()
    # Straight to gunicorn (a misrouted stream) the view refuses rather than hold a thread.
    direct = requests.get(
        rest.url + "/api/v1/inbox/stream",
        headers={"Authorization": f"Recipient {token}"},
        timeout=10,
    )

    assert counts == {"type": "unread_count", "count": 0, "unseen": 0}
    assert live["id"] == message.id
    assert direct.status_code == 503
    assert int(direct.headers["Retry-After"]) > 0
    assert direct.json()["code"] == "unavailable"


def test_the_proxy_logs_requests_without_the_token_in_the_query(
    arrangement: tuple[Gunicorn, Uvicorn, Nginx], sender: dict[str, Any]
) -> None:
    _, _, proxy = arrangement
    token = recipient_token_mint(recipient=sender["recipient"]).token

    with InboxStream(proxy.url, token, header=False) as stream:  # ?token=
        stream.data()
    with InboxSocket(proxy.ws_url, token) as socket:  # /ws/inbox?token=
        socket.conn.recv(timeout=10)
    wait_until(lambda: "/ws/inbox" in proxy.log(), timeout=10)

    log = proxy.log()
    assert "GET /api/v1/inbox/stream HTTP/1.1" in log
    assert token not in log


def test_the_proxy_stamps_x_request_start_itself(
    arrangement: tuple[Gunicorn, Uvicorn, Nginx], sender: dict[str, Any]
) -> None:
    rest, _, proxy = arrangement
    # 30 s ago: past the 10 s budget, yet recent enough to be believed (60 s at most).
    stale = {"X-Request-Start": f"t={time.time() - 30:.3f}"}

    direct = post(rest.url, sender, "direct", **stale)
    proxied = post(proxy.url, sender, "proxied", **stale)

    # Straight to gunicorn the old stamp is believed and the request shed unseen; through the
    # proxy the client's stamp is replaced by the proxy's own.
    assert direct.status_code == 503
    assert direct.json()["fields"] == {"reason": ["queue_time"]}
    assert proxied.status_code == 202, proxied.text
    assert list(Notification.objects.values_list("variables", flat=True)) == [
        {"order_id": "proxied"}
    ]


def test_behind_a_tls_load_balancer_https_passes_through_the_proxy_under_prod_settings(
    django_db_setup: None,
) -> None:
    # Given production settings (SECURE_SSL_REDIRECT on) behind the committed nginx, which
    # listens on plain HTTP as it does behind a TLS-terminating load balancer ...
    rest = Gunicorn(
        env(
            DJANGO_SETTINGS_MODULE="config.settings.prod",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            PUBLIC_BASE_URL="https://notify.example.com",
        ),
        workers=1,
        threads=2,
        name="gunicorn-prod-proxied",
    )
    proxy = Nginx(rest=f"127.0.0.1:{rest.port}", ws="127.0.0.1:9")
    try:
        # ... a request the LB forwarded as HTTPS is served, one that came in plain is redirected.
        via_lb = requests.get(
            proxy.url + API,
            headers={"X-Forwarded-Proto": "https"},
            allow_redirects=False,
            timeout=10,
        )
        plain = requests.get(proxy.url + API, allow_redirects=False, timeout=10)
    finally:
        proxy.stop()
        rest.stop()

    assert via_lb.status_code == 401, via_lb.text  # reached the API: no key given
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://127.0.0.1:{proxy.port}{API}"
