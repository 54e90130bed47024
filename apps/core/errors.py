"""One error shape everywhere: {"code": "...", "message": "...", "fields": {...}}."""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis.exceptions
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# A dependency that does not answer: PostgreSQL, Redis (throttles, queue depths, the channel
# layer) or the broker. The request may be retried as it is; nothing about it was wrong.
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    DatabaseOperationalError,
    DatabaseInterfaceError,
)


class ServiceError(Exception):
    """Raised by services for a request that cannot be honoured; rendered by the handler."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidInput(ServiceError):
    pass


class NotFound(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class Unavailable(ServiceError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def dependency_unavailable(exc: Exception) -> Unavailable | None:
    """The 503 for an exception that says a dependency is down (None for any other).

    Raised before a service commits, so nothing was accepted: the client retries. A service
    that has committed never lets such an error out (a failed publish after commit is the
    reconciler's to repair), so a 503 never hides a request that took effect.
    """
    if not isinstance(exc, DEPENDENCY_ERRORS):
        return None
    logger.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
    return Unavailable(
        "A service this request needs is unavailable; retry later.",
        retry_after=settings.DEPENDENCY_RETRY_AFTER_SECONDS,
    )


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "fields": fields or {}}


def _flatten(detail: Any) -> Any:
    """DRF's ErrorDetail trees as plain lists of messages per field."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(d, (dict, list)) for d in detail):
            return [str(d) for d in detail]
        return [_flatten(d) for d in detail]
    return [str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    unavailable = dependency_unavailable(exc)
    if unavailable is not None:
        exc = unavailable
    if isinstance(exc, ServiceError):
        answer = Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
        if isinstance(exc, Unavailable):
            answer["Retry-After"] = str(exc.retry_after)
        return answer
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    drf_response = drf_exception_handler(exc, context)
    if drf_response is None:
        return None
    response: Response = drf_response
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
            non_field = fields.pop("non_field_errors", None)
            message = non_field[0] if non_field else "Invalid input."
            if non_field:
                fields["non_field_errors"] = non_field
        else:
            fields = {"non_field_errors": _flatten(detail)}
            message = fields["non_field_errors"][0]
        response.data = error_body("invalid", message, fields)
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        response.data = error_body(
            code if isinstance(code, str) else exc.default_code, str(exc.detail)
        )
    return response
