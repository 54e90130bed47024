"""Request limits answered in the API's error shape, before any view runs.

The body size (DRF streams bodies past Django's own check), and NUL characters in the path,
the query string or a header: PostgreSQL text cannot hold them, so a NUL that reached a lookup
would be a 500. (Bodies are checked by apps.core.parsers.)
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.errors import error_body

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


NUL = "\x00"
NUL_MESSAGE = "Must not contain NUL characters (%00)."


def _nul_field(request: HttpRequest) -> str | None:
    """The first part of the request line or headers holding a NUL: `path`, a query
    parameter's name, or a header's name."""
    if NUL in request.path_info:
        return "path"
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in value for value in values):
            return name.replace(NUL, "\\u0000")
    for name, value in request.headers.items():
        if NUL in value:
            return str(name)
    return None


def _nul(field: str) -> JsonResponse:
    return JsonResponse(
        error_body("invalid", f"{field}: {NUL_MESSAGE}", {field: [NUL_MESSAGE]}), status=400
    )


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        error_body("payload_too_large", f"Request body is larger than {limit} bytes."),
        status=413,
    )


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nul_field = _nul_field(request)
        if nul_field is not None:
            return _nul(nul_field)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None:
            return self.get_response(request)
        raw_length = request.META.get("CONTENT_LENGTH")
        try:
            length = int(raw_length) if raw_length else None
        except ValueError:
            length = None
        if length is not None and length > limit:
            return _too_large(limit)
        if length is None and request.method in BODY_METHODS:
            # No length given (chunked, under ASGI): read at most limit + 1 bytes to decide,
            # then hand the view what was read, as HttpRequest.body itself does.
            body = request.read(limit + 1)
            if len(body) > limit:
                return _too_large(limit)
            request._body = body
            request._stream = BytesIO(body)
        return self.get_response(request)
