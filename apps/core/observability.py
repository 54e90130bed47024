"""Wiring of metrics, logs and error reporting into the processes: the web's `/metrics` view,
the worker's metrics endpoint and log context (Celery signals), Sentry."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import prometheus_client
from celery import signals
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import multiprocess
from prometheus_client.registry import CollectorRegistry

from apps.core.collectors import BreakerStateCollector, QueueDepthCollector
from notifier.logcontext import log_context_bind, log_context_clear, mask_every_handler

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_scrape_collectors: list[Any] = []


def _collectors() -> list[Any]:
    """The scrape-time collectors, built once per process."""
    with _lock:
        if not _scrape_collectors:
            _scrape_collectors.extend([QueueDepthCollector(), BreakerStateCollector()])
        return _scrape_collectors


def _multiprocess_registry() -> CollectorRegistry | None:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: this process's (or, in multiprocess mode, this host's) metrics, plus
    queue depths and breaker states read from Redis now."""
    base = _multiprocess_registry() or prometheus_client.REGISTRY
    page = prometheus_client.generate_latest(base)
    scrape = CollectorRegistry(auto_describe=False)
    for collector in _collectors():
        scrape.register(collector)
    page += prometheus_client.generate_latest(scrape)
    return HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_LATEST)


# --- Workers --------------------------------------------------------------------------------


@signals.worker_init.connect
def start_worker_metrics_server(**_: Any) -> None:
    """Serve this worker's metrics on WORKER_METRICS_PORT (0: not served)."""
    port = int(getattr(settings, "WORKER_METRICS_PORT", 0) or 0)
    if not port:
        return
    registry = _multiprocess_registry() or prometheus_client.REGISTRY
    prometheus_client.start_http_server(
        port, addr=settings.WORKER_METRICS_ADDRESS, registry=registry
    )
    logger.info("worker metrics served", extra={"port": port})


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def mask_celery_log_handlers(**_: Any) -> None:
    """Celery gives its task logger a handler of its own that does not propagate to the root
    handler: mask what it writes too."""
    mask_every_handler()


@signals.task_prerun.connect
def bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    log_context_clear()
    log_context_bind(task_id=task_id, task=getattr(task, "name", None))


@signals.task_postrun.connect
def clear_task_context(**_: Any) -> None:
    log_context_clear()


@signals.worker_process_shutdown.connect
def mark_process_dead(pid: int | None = None, **_: Any) -> None:
    """Multiprocess mode: forget a prefork child's live gauges when it exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
