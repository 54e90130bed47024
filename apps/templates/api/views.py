"""Templates API: list, create, read, update (each save a new version), version history."""

from __future__ import annotations

from typing import Any

from django.db.models import Max, QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clients.auth import request_client
from apps.core.errors import InvalidInput, NotFound
from apps.core.pagination import StrictCursorPagination
from apps.templates.api.serializers import (
    TemplateCreateSerializer,
    TemplateSerializer,
    TemplateWriteSerializer,
    VersionSerializer,
)
from apps.templates.models import Template
from apps.templates.selectors import (
    template_current_version,
    template_get,
    template_versions,
    templates_visible_to,
)
from apps.templates.services import template_create, template_save

KEY_MAX = 100


class TemplatePagination(StrictCursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("key", "id")


class VersionPagination(StrictCursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-number"


class TemplateSummarySerializer(serializers.ModelSerializer[Template]):
    priority = serializers.CharField(source="default_priority")
    version = serializers.IntegerField(source="current_version")

    class Meta:
        model = Template
        fields = ["key", "category", "priority", "variables", "version", "created_at", "updated_at"]


def _template_or_404(request: Request, key: str) -> Template:
    template = template_get(client=request_client(request), key=key)
    if template is None:
        raise NotFound(f"No template {key!r}.")
    return template


DIGEST_TEMPLATE_EXAMPLE = OpenApiExample(
    "A digest template (docs/workflows.md)",
    request_only=True,
    value={
        "category": "social",
        "digest": {"window": "1h", "key": "{{ post_id }}", "max_items": 50},
        "variants": [
            {
                "channel": "email",
                "subject": "{{ count }} new comment{{ count|pluralize }} on {{ post_title }}",
                "body": "{% for item in items %}{{ item.author }}: {{ item.text }}\n{% endfor %}",
            }
        ],
    },
)


AB_TEMPLATE_EXAMPLE = OpenApiExample(
    "An A/B test of the email subject (docs/analytics.md)",
    request_only=True,
    value={
        "category": "onboarding",
        "variants": [
            {
                "channel": "email",
                "label": "A",
                "weight": 70,
                "subject": "Welcome, {{ recipient.name }}",
                "body": "Your account is ready.",
            },
            {
                "channel": "email",
                "label": "B",
                "weight": 30,
                "subject": "{{ recipient.name }}, your account is ready",
                "body": "Your account is ready.",
            },
            {"channel": "sms", "body": "Welcome! Your account is ready."},
        ],
    },
)


def _content(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "variants": data["variants"],
        "category": data["category"],
        "default_priority": data["priority"],
        "variables": data["variables"],
        "throttle": data.get("throttle"),
        # `false` and absent alike: no digest (a PUT replaces the whole declaration).
        "digest": data.get("digest") or None,
    }


def _detail(template: Template) -> dict[str, Any]:
    return TemplateSerializer.data_for(template, template_current_version(template=template))


class TemplateListCreateView(APIView):
    pagination_class = TemplatePagination  # for the OpenAPI schema: the list is paginated

    @extend_schema(responses={200: TemplateSummarySerializer(many=True)})
    def get(self, request: Request) -> Response:
        qs: QuerySet[Template] = templates_visible_to(client=request_client(request)).annotate(
            current_version=Max("versions__number")
        )
        paginator = TemplatePagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TemplateSummarySerializer(page, many=True).data)

    @extend_schema(
        request=TemplateCreateSerializer,
        responses={201: TemplateSerializer},
        description="Create a template (409 if the key exists: use PUT to add a version).",
    )
    def post(self, request: Request) -> Response:
        serializer = TemplateCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        template, _ = template_create(
            client=request_client(request), key=data["key"], **_content(data)
        )
        return Response(_detail(template), status=status.HTTP_201_CREATED)


class TemplateDetailView(APIView):
    @extend_schema(responses={200: TemplateSerializer})
    def get(self, request: Request, key: str) -> Response:
        return Response(_detail(_template_or_404(request, key)))

    @extend_schema(
        request=TemplateWriteSerializer,
        responses={200: TemplateSerializer, 201: TemplateSerializer},
        description="Create the template or save a new version of it. Several variants of "
        "one channel and locale are an A/B test: each needs a distinct `label`; `weight` is "
        "its share of new recipients (docs/analytics.md).",
        examples=[DIGEST_TEMPLATE_EXAMPLE, AB_TEMPLATE_EXAMPLE],
    )
    def put(self, request: Request, key: str) -> Response:
        if len(key) > KEY_MAX:
            raise InvalidInput("Key too long.", fields={"key": [f"At most {KEY_MAX} characters."]})
        serializer = TemplateWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template, version = template_save(
            client=request_client(request), key=key, **_content(dict(serializer.validated_data))
        )
        # Of concurrent PUTs that create a template, the one whose version is 1 created it
        # (an existence check before the save would tell several of them "created").
        created = version.number == 1
        return Response(
            _detail(template), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TemplateVersionListView(APIView):
    pagination_class = VersionPagination  # for the OpenAPI schema: the list is paginated

    @extend_schema(responses={200: VersionSerializer(many=True)})
    def get(self, request: Request, key: str) -> Response:
        template = _template_or_404(request, key)
        paginator = VersionPagination()
        page = paginator.paginate_queryset(template_versions(template=template), request, view=self)
        return paginator.get_paginated_response(VersionSerializer(page, many=True).data)


class TemplateVersionDetailView(APIView):
    @extend_schema(responses={200: VersionSerializer})
    def get(self, request: Request, key: str, number: int) -> Response:
        template = _template_or_404(request, key)
        version = template_versions(template=template).filter(number=number).first()
        if version is None:
            raise NotFound(f"Template {key!r} has no version {number}.")
        return Response(VersionSerializer(version).data)
