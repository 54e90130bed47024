"""Request size limit answered in the API's error shape (DRF streams bodies past Django's check)."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.errors import error_body

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        error_body("payload_too_large", f"Request body is larger than {limit} bytes."),
        status=413,
    )


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
