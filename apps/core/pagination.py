"""Keyset ("cursor") pagination for every list: `?cursor=&limit=`, answers `{"next", "results"}`.

The cursor is an opaque token holding the sort key of the last row returned; the next page is
the rows strictly after it, so pages stay stable while rows are being added. Cursors are signed
(SECRET_KEY, salted with the list's model and ordering): a cursor this service did not produce
for this list, hand-made, edited or taken from another list, is a 400 naming `cursor` before
any of it is read, and so is one that decodes to values of the wrong type.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any
from urllib import parse

from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, Cursor, CursorPagination, _positive_int
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


INVALID_CURSOR = "invalid cursor: use the `next` link of a previous page"


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def _signer(model: type[Model], ordering: Sequence[str]) -> signing.Signer:
    """Signs cursors for one list: its model and its ordering."""
    salt = f"apps.core.pagination:{model._meta.label}:{','.join(ordering)}"
    return signing.Signer(salt=salt, sep=".")


def _unsign(signer: signing.Signer, token: str, field: str, message: str) -> str:
    try:
        return signer.unsign(token)
    except signing.BadSignature:
        raise _invalid(field, message) from None


class KeysetPagination(BasePagination):
    """Newest first by (`created_at`, `id`) unless a view sets `pagination_ordering`."""

    ordering: Sequence[str] = ("-created_at", "-id")
    cursor_query_param = "cursor"
    limit_query_param = "limit"

    def __init__(self) -> None:
        self.next_url: str | None = None

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        ordering = tuple(getattr(view, "pagination_ordering", self.ordering))
        limit = self._limit(request)
        fields = [name.lstrip("-") for name in ordering]
        descending = ordering[0].startswith("-")
        queryset = queryset.order_by(*ordering)
        signer = _signer(queryset.model, ordering)
        position = self._decode(request, queryset.model, fields, signer)
        if position is not None:
            queryset = queryset.filter(_after(fields, position, descending=descending))
        rows = list(queryset[: limit + 1])
        page, more = rows[:limit], len(rows) > limit
        self.next_url = None
        if more:
            last = page[-1]
            token = signer.sign(self._encode([getattr(last, name) for name in fields]))
            url = request.build_absolute_uri()
            self.next_url = replace_query_param(url, self.cursor_query_param, token)
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.next_url, "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page, or null on the last page.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque cursor from the previous page's `next`.",
                "schema": {"type": "string"},
            },
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Page size (1-{MAX_LIMIT}, default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
        ]

    def _limit(self, request: Request) -> int:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError:
            raise _invalid(self.limit_query_param, "must be an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise _invalid(self.limit_query_param, f"must be between 1 and {MAX_LIMIT}")
        return limit

    @staticmethod
    def _encode(values: list[Any]) -> str:
        raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else str(v) for v in values])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _decode(
        self, request: Request, model: type[Model], fields: list[str], signer: signing.Signer
    ) -> list[Any] | None:
        signed = request.query_params.get(self.cursor_query_param)
        if signed is None:
            return None
        message = INVALID_CURSOR
        token = _unsign(signer, signed, self.cursor_query_param, message)
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            values = json.loads(raw)
        except (binascii.Error, ValueError):
            raise _invalid(self.cursor_query_param, message) from None
        if not isinstance(values, list) or len(values) != len(fields):
            raise _invalid(self.cursor_query_param, message)
        try:
            position = [
                model._meta.get_field(name).to_python(value)  # type: ignore[union-attr]
                for name, value in zip(fields, values, strict=True)
            ]
        except (DjangoValidationError, TypeError, ValueError):
            raise _invalid(self.cursor_query_param, message) from None
        # Our cursors carry an offset; a hand-made naive one is read as UTC.
        return [
            timezone.make_aware(v, dt.UTC)
            if isinstance(v, dt.datetime) and timezone.is_naive(v)
            else v
            for v in position
        ]


def _after(fields: list[str], values: list[Any], *, descending: bool) -> Q:
    """Rows strictly after `values` in (`fields`) order: (a < x) or (a = x and b < y) ..."""
    op = "lt" if descending else "gt"
    condition = Q()
    for i, name in enumerate(fields):
        step = Q(**{f"{name}__{op}": values[i]})
        for prior, value in zip(fields[:i], values[:i], strict=True):
            step &= Q(**{prior: value})
        condition |= step
    return condition


class StrictCursorPagination(CursorPagination):
    """DRF's cursor pagination, but bad input is a 400 naming the parameter, never a 404/500.

    DRF answers 404 for an undecodable cursor, lets a decodable cursor whose position is not of
    the ordering field's type fail in the ORM, and silently ignores a bad page size.
    """

    invalid_cursor_message = "invalid cursor"
    signer: signing.Signer

    def get_page_size(self, request: Request) -> int | None:
        param = self.page_size_query_param
        if param and param in request.query_params:
            try:
                size = int(request.query_params[param])
            except ValueError:
                raise _invalid(param, "must be an integer") from None
            if size < 1:
                raise _invalid(param, "must be at least 1")
            return min(size, self.max_page_size) if self.max_page_size else size
        return self.page_size

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        # No list here takes an ordering from the request: the class's is the one used.
        ordering = (self.ordering,) if isinstance(self.ordering, str) else tuple(self.ordering)
        self.signer = _signer(queryset.model, ordering)
        try:
            return super().paginate_queryset(queryset, request, view)
        except (NotFound, DjangoValidationError):
            raise _invalid(self.cursor_query_param, self.invalid_cursor_message) from None

    def encode_cursor(self, cursor: Cursor) -> str:
        """DRF's cursor token (offset, reverse, position), signed."""
        tokens: dict[str, str] = {}
        if cursor.offset != 0:
            tokens["o"] = str(cursor.offset)
        if cursor.reverse:
            tokens["r"] = "1"
        if cursor.position is not None:
            tokens["p"] = str(cursor.position)
        querystring = parse.urlencode(tokens, doseq=True)
        token = base64.urlsafe_b64encode(querystring.encode()).decode().rstrip("=")
        return str(
            replace_query_param(
                str(self.base_url), self.cursor_query_param, self.signer.sign(token)
            )
        )

    def decode_cursor(self, request: Request) -> Cursor | None:
        signed = request.query_params.get(self.cursor_query_param)
        if signed is None:
            return None
        token = _unsign(self.signer, signed, self.cursor_query_param, self.invalid_cursor_message)
        try:
            querystring = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            tokens = parse.parse_qs(querystring, keep_blank_values=True)
            offset = _positive_int(tokens.get("o", ["0"])[0], cutoff=self.offset_cutoff)
            reverse = bool(int(tokens.get("r", ["0"])[0]))
            position = tokens.get("p", [None])[0]
        except (TypeError, ValueError, binascii.Error):
            raise _invalid(self.cursor_query_param, self.invalid_cursor_message) from None
        # The stubs say int; DRF keeps positions as the strings it encoded.
        return Cursor(offset=offset, reverse=reverse, position=position)  # type: ignore[arg-type]
