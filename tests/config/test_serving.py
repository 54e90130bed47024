"""The production serving arrangement, for real: the committed nginx config in front of gunicorn
(REST) and uvicorn (/ws/); overload admission in a real gunicorn; the Procfile's web line
serving /metrics summed over its processes. Against the test database and Redis."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.conf import settings

from apps.deliveries.models import Notification
from apps.inbox.models import InboxMessage
from apps.inbox.realtime import publish_notification
from apps.recipients.tokens import recipient_token_mint
from config.celery import app as celery_app
from harness.serving import Gunicorn, Nginx, Uvicorn, healthy
from tests.factories import ApiKeyFactory, RecipientFactory, TemplateFactory
from tests.support.processes import BIN, ROOT, LoggedProcess, free_port, wait_until
from tests.support.processes import test_database_url as database_url
from tests.support.prom import fetch, value
from tests.support.sse import InboxStream
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.django_db(transaction=True)]

API = "/api/v1/notifications"
NOTIFICATIONS_TABLE = Notification._meta.db_table


def env(**extra: str) -> dict[str, str]:
    full = dict(os.environ)
    full.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    full.update(extra)
    return full


@pytest.fixture
def sender() -> dict[str, Any]:
    """A client's raw API key, a recipient and a template to send."""
    key, raw = ApiKeyFactory.create_with_raw()
    recipient = RecipientFactory(client=key.client, external_id="user-1")
    TemplateFactory(client=key.client, key="order_shipped")
    return {"key": raw, "client": key.client, "recipient": recipient}


def post(url: str, sender: dict[str, Any], order: str, **headers: str) -> requests.Response:
    return requests.post(
        url + API,
        json={"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": order}},
        headers={"Authorization": f"Bearer {sender['key']}", **headers},
        timeout=30,
    )


class TableLock:
    """ACCESS EXCLUSIVE on the notifications table from a connection of our own: a POST
    blocks on it, in flight, until `release()`."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(database_url())
        self.conn.execute(f"LOCK TABLE {NOTIFICATIONS_TABLE} IN ACCESS EXCLUSIVE MODE")

    def waiting(self) -> int:
        with psycopg.connect(database_url(), autocommit=True) as other:
            row = other.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                [NOTIFICATIONS_TABLE],
            ).fetchone()
        return int(row[0]) if row else 0

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def in_background(fn: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(response=fn(*args)))
    thread.start()
    return thread, out


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


def test_past_the_in_flight_limit_gunicorn_answers_503_at_once_and_creates_nothing(
    sender: dict[str, Any],
) -> None:
    web = Gunicorn(
        env(ADMISSION_MAX_IN_FLIGHT="1", ADMISSION_RETRY_AFTER_SECONDS="2"),
        workers=1,
        threads=4,
        name="gunicorn-admission",
    )
    lock = TableLock()
    try:
        # Given one request in flight (blocked on the table lock) ...
        first, out = in_background(post, web.url, sender, "admitted")
        wait_until(lambda: lock.waiting() >= 1, timeout=30)

        # ... the next is answered at once, the probes and the scrape still are.
        started = time.monotonic()
        shed = post(web.url, sender, "shed")
        took = time.monotonic() - started
        health = requests.get(web.url + "/healthz", timeout=10)
        scrape = fetch(web.url + "/metrics")
    finally:
        lock.release()
    first.join(30)
    web.stop()

    assert shed.status_code == 503
    assert shed.headers["Retry-After"] == "2"
    assert shed.json() == {
        "code": "overloaded",
        "message": "The service is at capacity; nothing was done. Retry after the given seconds.",
        "fields": {"reason": ["in_flight"]},
    }
    assert took < 2.0  # not queued behind the request in flight (which waited on the lock)
    assert health.status_code == 200
    assert value(scrape, "notifier_requests_shed_total", reason="in_flight") == 1.0
    assert out["response"].status_code == 202
    # Nothing of the shed request exists: only the admitted one was created.
    assert list(Notification.objects.values_list("variables", flat=True)) == [
        {"order_id": "admitted"}
    ]


def _procfile(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.removeprefix(f"{name}:").strip()
    raise AssertionError(f"no {name} in the Procfile")


def test_the_procfile_web_line_serves_metrics_summed_over_its_processes(
    sender: dict[str, Any],
) -> None:
    port = free_port()
    # Two sync workers: one kept busy by a blocked POST, so the other serves every /readyz.
    web = LoggedProcess(
        ["sh", "-c", _procfile("web")],
        name="procfile-web",
        env=env(PORT=str(port), WEB_HOST="127.0.0.1", WEB_CONCURRENCY="2", WEB_THREADS="1"),
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or its workers still booting
            return False

    web.wait_started(up, "the Procfile's web", timeout=90)
    lock = TableLock()
    try:
        first, out = in_background(post, url, sender, "on-one-process")
        wait_until(lambda: lock.waiting() >= 1, timeout=30)
        readies = [requests.get(url + "/readyz", timeout=10).status_code for _ in range(5)]
    finally:
        lock.release()
    first.join(30)
    scrape = fetch(url + "/metrics")
    web.stop()

    assert out["response"].status_code == 202
    assert readies == [200] * 5
    # The POST was counted by one process, the five /readyz by the other: one scrape (served
    # by either) shows both.
    assert value(scrape, "django_http_requests_total_by_method_total", method="POST") == 1.0
    by_view = "django_http_requests_total_by_view_transport_method_total"
    assert value(scrape, by_view, view="readyz", transport="http", method="GET") == 5.0


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


def test_sigterm_to_the_procfile_worker_line_reaches_celery_for_a_warm_shutdown() -> None:
    # Given a Procfile worker line run as compose and the platforms run it: `sh -c <line>` ...
    worker = LoggedProcess(
        ["sh", "-c", _procfile("worker_maintenance")], name="procfile-worker", env=env()
    )
    # (The line sets no log level: the worker's answer to a ping says it is consuming.)
    worker.wait_started(
        lambda: bool(celery_app.control.ping([f"maintenance@{socket.gethostname()}"], timeout=1)),
        "worker",
        timeout=90,
    )
    try:
        command = Path(f"/proc/{worker.pid}/cmdline").read_bytes().split(b"\0")
        # ... SIGTERM to the process started (what `docker stop` sends to PID 1) ...
        os.kill(worker.pid, signal.SIGTERM)
        code = worker.popen.wait(timeout=60)
    finally:
        worker.stop()

    # ... reaches celery itself (exec'd, not a child of the shell), which shuts down warm.
    assert any(b"celery" in part for part in command[:2]), command
    assert code == 0
    assert b"Warm shutdown" in worker.log_path.read_bytes()


def test_gunicorn_counts_only_this_runs_metrics_and_leaves_the_given_directory_alone(
    tmp_path: Path,
) -> None:
    # Given a metrics directory holding a previous run's counter file and a file of someone else
    given = tmp_path / "metrics"
    given.mkdir()
    previous_run = (
        "import prometheus_client as p\n"
        "p.Counter('notifier_requests_shed', 'x', ['reason']).labels(reason='in_flight').inc(7)\n"
    )
    subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", previous_run],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(given)},
        check=True,
    )
    (stale,) = given.glob("*.db")
    (given / "unrelated.txt").write_text("keep me")

    # when gunicorn runs on it, is scraped, reloaded (HUP) and stopped
    web = Gunicorn(
        env(PROMETHEUS_MULTIPROC_DIR=str(given)), workers=2, threads=1, name="gunicorn-m"
    )
    try:
        before = fetch(web.url + "/metrics")
        (run_dir,) = [p for p in given.iterdir() if p.is_dir()]
        os.kill(web.pid, signal.SIGHUP)
        wait_until(lambda: healthy(web.url), timeout=30)
        time.sleep(1)  # the old workers are replaced after the new ones boot
        reloaded_dirs = [p.name for p in given.iterdir() if p.is_dir()]
    finally:
        web.stop()

    # then the previous run's 7 is not counted, the reload kept the run's directory, and only
    # that directory is gone at exit.
    assert value(before, "notifier_requests_shed_total", reason="in_flight") == 0.0
    assert reloaded_dirs == [run_dir.name]
    assert stale.exists()
    assert (given / "unrelated.txt").read_text() == "keep me"
    assert not run_dir.exists()


def test_a_web_query_stuck_past_the_statement_timeout_is_cancelled_with_a_503(
    sender: dict[str, Any],
) -> None:
    # Given the web with a 500 ms statement timeout and the table its POST writes locked ...
    web = Gunicorn(env(WEB_STATEMENT_TIMEOUT_MS="500"), workers=1, threads=2, name="gunicorn-st")
    lock = TableLock()
    try:
        started = time.monotonic()
        stuck = post(web.url, sender, "stuck")
        took = time.monotonic() - started
    finally:
        lock.release()
        web.stop()

    # ... PostgreSQL cancels the query: the thread is free again and the client told to retry.
    assert stuck.status_code == 503, stuck.text
    assert took < 10
    assert not Notification.objects.exists()
