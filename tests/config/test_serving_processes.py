"""The serving processes for real: overload admission and the statement timeout in a real
gunicorn, its metrics directory, the Procfile's web line serving /metrics summed over its
processes and its worker line shutting down warm. Against the test database and Redis. (nginx
in front of them: test_serving_proxy.py.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from apps.deliveries.models import Notification
from config.celery import app as celery_app
from harness.serving import Gunicorn, healthy
from tests.support.processes import LoggedProcess, free_port, wait_until
from tests.support.prom import fetch, value
from tests.support.serving import TableLock, env, in_background, post, procfile_line

pytestmark = [pytest.mark.django_db(transaction=True)]


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


def test_the_procfile_web_line_serves_metrics_summed_over_its_processes(
    sender: dict[str, Any],
) -> None:
    port = free_port()
    # Two sync workers: one kept busy by a blocked POST, so the other serves every /readyz.
    web = LoggedProcess(
        ["sh", "-c", procfile_line("web")],
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


def test_sigterm_to_the_procfile_worker_line_reaches_celery_for_a_warm_shutdown() -> None:
    # Given a Procfile worker line run as compose and the platforms run it: `sh -c <line>` ...
    worker = LoggedProcess(
        ["sh", "-c", procfile_line("worker_maintenance")], name="procfile-worker", env=env()
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
