"""The ingestion ceiling: the same JSON validated by the same serializer, one INSERT, 202.

No authentication, throttling or routing: what the stack (server, Django, DRF, one
PostgreSQL commit) costs before any of the service's own work.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.benchmarks.models import BenchRow
from apps.deliveries.api.serializers import NotificationCreateSerializer


class BareNotificationView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    schema = None  # not part of the public API

    def post(self, request: Request) -> Response:
        serializer = NotificationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = BenchRow.objects.create(payload=request.data)
        return Response({"id": row.pk, "status": "accepted"}, status=status.HTTP_202_ACCEPTED)
