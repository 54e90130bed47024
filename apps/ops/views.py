"""The web's `GET /metrics`."""

from __future__ import annotations

import threading
from typing import Any

import prometheus_client
from django.http import HttpRequest, HttpResponse
from prometheus_client.registry import CollectorRegistry

from apps.core.observability import multiprocess_registry
from apps.ops.collectors import BreakerStateCollector, QueueDepthCollector

_lock = threading.Lock()
_scrape_collectors: list[Any] = []


def _collectors() -> list[Any]:
    """The scrape-time collectors, built once per process."""
    with _lock:
        if not _scrape_collectors:
            _scrape_collectors.extend([QueueDepthCollector(), BreakerStateCollector()])
        return _scrape_collectors


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: this process's (or, in multiprocess mode, this host's) metrics, plus
    queue depths and breaker states read from Redis now."""
    base = multiprocess_registry() or prometheus_client.REGISTRY
    page = prometheus_client.generate_latest(base)
    scrape = CollectorRegistry(auto_describe=False)
    for collector in _collectors():
        scrape.register(collector)
    page += prometheus_client.generate_latest(scrape)
    return HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_LATEST)
