"""Typed errors, built from the API's one error shape `{"code", "message", "fields"}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class NotifierError(Exception):
    """Base of every error this client raises."""


def _key_of(response: httpx.Response) -> str | None:
    """The Idempotency-Key of the request `response` answers (None: none, or no request)."""
    try:
        request = response.request
    except RuntimeError:  # a Response built by hand, not received
        return None
    key = request.headers.get("Idempotency-Key")
    return None if key is None else str(key)


class APIConnectionError(NotifierError):
    """The service could not be reached (refused, reset, timed out), after the retries.
    `idempotency_key`: the key the request carried (a `send` whose answer was lost may have
    been accepted: send again with this key and it is not sent twice), else None."""

    def __init__(self, message: str, *, idempotency_key: str | None = None) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key


class InvalidResponseError(NotifierError):
    """The service's answer could not be read: a success status whose body is not the JSON
    this call expects (a proxy's page, a truncated body), or a body that does not decode.
    `status` is the HTTP status when known; `idempotency_key` the key the request carried (a
    `send` answered so may well have been accepted)."""

    def __init__(
        self, message: str, *, status: int | None = None, idempotency_key: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.idempotency_key = idempotency_key


class APIError(NotifierError):
    """The service answered with an error status. `code`, `message` and `fields` are the error
    body's (`fields` names each bad field of a 400); `status` the HTTP status;
    `idempotency_key` the key the request carried (POST /notifications), else None."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        fields: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.idempotency_key = idempotency_key
        self.message = message
        self.status = status
        self.code = code
        self.fields: dict[str, Any] = dict(fields or {})
        self.headers: dict[str, str] = dict(headers or {})


class ValidationError(APIError):
    """400: invalid input; `fields` maps each bad field to its messages."""


class AuthenticationError(APIError):
    """401: no valid API key (or recipient token)."""


class PermissionDeniedError(APIError):
    """403: authenticated, but this credential may not do this (e.g. dead letters need ops)."""


class NotFoundError(APIError):
    """404: no such resource, or it belongs to another client."""


class ConflictError(APIError):
    """409: e.g. an idempotency key reused with a different body."""


class PayloadTooLargeError(APIError):
    """413: the request body is too large."""


class _RetryableError(APIError):
    """An answer that says "later": `retry_after` is the wait the service asked for, in seconds
    (None when it named none)."""

    def __init__(self, message: str, *, retry_after: float | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimitedError(_RetryableError):
    """429: too many requests for this key, still so after the retries."""


class ServiceUnavailableError(_RetryableError):
    """503: the service is shedding load or a dependency is down, still so after the retries."""


class ServerError(APIError):
    """Any other 5xx."""


class WebhookVerificationError(NotifierError):
    """A webhook's signature, timestamp or headers did not verify: do not trust its body."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
}


def error_from_response(response: httpx.Response, retry_after: float | None) -> APIError:
    """The typed error for an error `response`; a body that is not the error shape (a proxy's
    HTML page, say) still gives one, with code `http_<status>` and the start of the text."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        body = {"code": f"http_{status}", "message": response.text[:200] or response.reason_phrase}
    fields = body.get("fields")
    details: dict[str, Any] = {
        "status": status,
        "code": body["code"],
        "fields": fields if isinstance(fields, dict) else {},
        "headers": dict(response.headers),
        "idempotency_key": _key_of(response),
    }
    message = str(body.get("message") or response.reason_phrase)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, **details)
    if status == 503:
        return ServiceUnavailableError(message, retry_after=retry_after, **details)
    if status >= 500:
        return ServerError(message, **details)
    return _BY_STATUS.get(status, APIError)(message, **details)
