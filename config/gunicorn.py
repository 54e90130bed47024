"""gunicorn settings for the REST API (`gunicorn -c config/gunicorn.py config.wsgi:application`).

The Procfile's `web` line and compose's `web` service run this; `/ws/` is served by uvicorn
(`ws`) behind the same reverse proxy (docker/nginx/). Everything comes from the environment:

- WEB_HOST (0.0.0.0) and PORT (8000), WEB_CONCURRENCY processes (2), WEB_THREADS threads each
  (gthread; 1: sync workers), WEB_TIMEOUT seconds before a worker that stopped heartbeating is
  restarted (30; under gthread not a per-request limit, see `timeout` below).
- WEB_STATEMENT_TIMEOUT_MS: PostgreSQL statement_timeout for the web's queries (WEB_TIMEOUT).
- PROMETHEUS_MULTIPROC_DIR: where the processes keep their metrics so that `/metrics` sums
  them. Each run (master start) uses a fresh subdirectory of it, removed when gunicorn exits
  (a killed master leaves its subdirectory behind; it is never counted again); with several
  processes and none given, a fresh temporary directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

bind = f"{os.environ.get('WEB_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
# The worker's heartbeat deadline: a sync worker stuck this long is killed and replaced. A gthread
# worker's heartbeat comes from its main thread, which keeps beating while a request thread is
# stuck, so with threads this bounds a hung worker, never one slow request: that is bounded by
# the proxy's read timeout (the client gets its 504, the thread stays busy) and, in the
# database, by the statement timeout below.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# PostgreSQL's statement_timeout for this process's queries (ms, 0: none; default WEB_TIMEOUT),
# handed to the settings (DB_STATEMENT_TIMEOUT_MS) of the workers forked from here only.
os.environ["DB_STATEMENT_TIMEOUT_MS"] = os.environ.get(
    "WEB_STATEMENT_TIMEOUT_MS", str(timeout * 1000)
)
# Connections kept open between requests (the reverse proxy reuses its upstream connections).
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
# Django's LOGGING (JSON, masked) is the log; gunicorn's access log would duplicate it unmasked.
accesslog = None
errorlog = "-"
# The app is imported in each worker, not in the master: a worker that refuses unsafe
# production settings (config/wsgi.py) fails to boot and gunicorn exits, instead of serving.
preload_app = False
# gunicorn 27's control socket is one path per user (~/.gunicorn/gunicorn.ctl): several gunicorns
# on one host (tests, the bench) would take it from each other, and nothing here uses it.
control_socket_disable = True

# Multiprocess metrics (PROMETHEUS_MULTIPROC_DIR). Only in the hooks below: gunicorn reads this
# file again on every HUP reload, and a reload must neither move nor empty the live directory.
_OWN_DIR = "NOTIFIER_WEB_METRICS_RUN_DIR"


def on_starting(server: Any) -> None:
    """Once per master, before any worker: a fresh metrics directory for this run, inside the
    given PROMETHEUS_MULTIPROC_DIR (a made-up one with several processes and none given).
    Files of a previous run are not counted, and nothing else in the given directory is
    touched."""
    base = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not base and workers <= 1:
        return
    if base:
        os.makedirs(base, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix=f"gunicorn-{os.getpid()}-", dir=base or None)
    # Set before any worker is forked, so every worker's prometheus-client (and /metrics) sees it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = run_dir
    os.environ[_OWN_DIR] = run_dir


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: drop its live gauges from the sum (its counters stay counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Imported here, never at the top: prometheus-client picks its storage when first
        # imported, and the workers fork from this process after the directory is set.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """The master stops: remove this run's metrics directory (only the one it made)."""
    run_dir = os.environ.pop(_OWN_DIR, "")
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
