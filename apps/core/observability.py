"""Wiring of metrics, logs and error reporting into the processes: the worker's metrics
endpoint and log context (Celery signals). The web's `/metrics` view is `apps.ops.views`."""

from __future__ import annotations

import logging
import os
from typing import Any

import prometheus_client
from celery import signals
from django.conf import settings
from prometheus_client import multiprocess
from prometheus_client.registry import CollectorRegistry

from notifier.logcontext import log_context_bind, log_context_clear, mask_every_handler

logger = logging.getLogger(__name__)


def multiprocess_registry() -> CollectorRegistry | None:
    """prometheus-client's multiprocess registry when PROMETHEUS_MULTIPROC_DIR is set."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


# --- Workers --------------------------------------------------------------------------------


@signals.worker_init.connect
def start_worker_metrics_server(**_: Any) -> None:
    """Serve this worker's metrics on WORKER_METRICS_PORT (0: not served)."""
    port = int(getattr(settings, "WORKER_METRICS_PORT", 0) or 0)
    if not port:
        return
    registry = multiprocess_registry() or prometheus_client.REGISTRY
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
