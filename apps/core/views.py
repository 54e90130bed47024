"""JSON answers for errors raised outside DRF views (unknown URLs, crashes)."""

from __future__ import annotations

import sys

from django.http import HttpRequest, JsonResponse

from apps.core.errors import dependency_unavailable, error_body


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """Django calls this while handling the exception: one that says a dependency is down
    (database, Redis, broker) is the same 503 with Retry-After as in the API (a provider's
    webhook, for one, then retries), anything else a 500."""
    exc = sys.exc_info()[1]
    unavailable = dependency_unavailable(exc) if isinstance(exc, Exception) else None
    if unavailable is not None:
        return JsonResponse(
            error_body(unavailable.code, unavailable.message),
            status=unavailable.status_code,
            headers={"Retry-After": str(unavailable.retry_after)},
        )
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)
