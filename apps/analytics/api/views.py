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
from apps.analytics.experiments import experiment_summary
from apps.analytics.selectors import GROUP_BY, analytics_report
from apps.clients.auth import request_client
from apps.clients.models import ApiClient
from apps.core.errors import ServiceError
from apps.templates.models import Template


class ClientFilterForbidden(ServiceError):
    status_code = 403
    code = "permission_denied"


def _experiment(
    *, caller: ApiClient, client: ApiClient | None, key: str, params: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """The template's A/B tests over the range (apps.analytics.experiments), or None when no
    single template has that key in scope (an ops key's key shared by several clients)."""
    templates = Template.objects.filter(key=key)
    if client is not None:
        templates = templates.filter(client=client)
    found = list(templates[:2])
    if len(found) != 1:
        return None
    return experiment_summary(
        # An ops key without `client=` sees every client's counts (its own is_ops says so).
        client=client or caller,
        template=found[0],
        start=params["from"],
        end=params["to"],
        channel=params.get("channel"),
    )


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
            OpenApiParameter(
                "template",
                str,
                description="A template key. An ops key may write `client name/template key` "
                "(as `client=` plus the key); a bare key matches that key in every client.",
            ),
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
        if "/" in params.get("template", ""):
            name, params["template"] = params["template"].rsplit("/", 1)
            if params.setdefault("client", name) != name:
                raise ServiceError(
                    "Two different clients.",
                    fields={"template": ["Names another client than `client`."]},
                )
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
        body = report.as_dict()
        if params["group_by"] == "variant" and params.get("template"):
            body["experiment"] = _experiment(
                caller=caller, client=client, key=params["template"], params=params
            )
        data = AnalyticsReportSerializer(body).data
        return Response(data)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Only the report has a CSV form: errors keep the one JSON error shape (and OPTIONS its
        # JSON description), whatever the Accept header asked for.
        if request.method != "GET" or getattr(response, "status_code", 200) >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
