"""`GET /api/v1/analytics`: the rollups summed per group, as JSON or (`Accept: text/csv`) CSV."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analytics.api.csv import AnalyticsCSVRenderer
from apps.analytics.api.serializers import (
    BOUND_HELP,
    CHANNELS,
    AnalyticsQuerySerializer,
    AnalyticsReportSerializer,
)
from apps.analytics.selectors import GROUP_BY, analytics_report
from apps.clients.auth import request_client
from apps.clients.models import ApiClient
from apps.core.errors import ServiceError


class ClientFilterForbidden(ServiceError):
    status_code = 403
    code = "permission_denied"


class AnalyticsView(APIView):
    renderer_classes = [JSONRenderer, AnalyticsCSVRenderer]

    @extend_schema(
        operation_id="analytics_report",
        parameters=[
            OpenApiParameter(
                "from", str, description=BOUND_HELP + " Default: 30 days before `to`."
            ),
            OpenApiParameter(
                "to", str, description=BOUND_HELP + " Default: the start of the next UTC hour."
            ),
            OpenApiParameter("template", str, description="A template key."),
            OpenApiParameter("channel", str, enum=CHANNELS),
            OpenApiParameter("group_by", str, enum=list(GROUP_BY), default="day"),
            OpenApiParameter(
                "client", str, description="Ops keys only: one client's rows (its name)."
            ),
        ],
        responses={
            (200, "application/json"): AnalyticsReportSerializer,
            (200, "text/csv"): OpenApiResponse(
                str, description="One line per group, then `total`; a header line first."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        # A plain dict: DRF reads "" in a QueryDict as "absent"; here it is a bad value.
        query = AnalyticsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        caller = request_client(request)
        client: ApiClient | None = caller
        if "client" in params:
            if not caller.is_ops:
                raise ClientFilterForbidden("Only an ops key may choose the client.")
            client = ApiClient.objects.filter(name=params["client"]).first()
            if client is None:
                raise ServiceError("No such client.", fields={"client": ["No such client."]})
        elif caller.is_ops:
            client = None
        report = analytics_report(
            client=client,
            start=params["from"],
            end=params["to"],
            group_by=params["group_by"],
            template_key=params.get("template"),
            channel=params.get("channel"),
        )
        data = AnalyticsReportSerializer(report.as_dict()).data
        return Response(data)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Only the report has a CSV form: errors keep the one JSON error shape (and OPTIONS its
        # JSON description), whatever the Accept header asked for.
        if request.method != "GET" or getattr(response, "status_code", 200) >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
