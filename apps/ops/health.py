"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

from celery import current_app as celery_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from apps.core.broker import redis_client

PROBE_TIMEOUT_SECONDS = 2


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    redis_client(settings.REDIS_URL, timeout=PROBE_TIMEOUT_SECONDS, fail_fast=True).ping()


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "redis": _check_redis,
    "broker": _check_broker,
}


def readyz(request: HttpRequest) -> JsonResponse:
    """Database, Redis and broker reachable; 503 naming the parts that are not."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            results[name] = f"unavailable: {type(exc).__name__}"
        else:
            results[name] = "ok"
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        return JsonResponse(
            {
                "status": "unavailable",
                "code": "not_ready",
                "message": f"Not ready: {', '.join(failing)} unreachable.",
                "checks": results,
            },
            status=503,
            headers={"Retry-After": "5"},
        )
    return JsonResponse({"status": "ok", "checks": results})
