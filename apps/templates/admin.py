"""Admin for templates: metadata, version history (read-only) and a live preview.

Versions and variants are immutable: they are what past deliveries were rendered from.
"""

from __future__ import annotations

import json
from typing import Any

# Admin classes are generic only in django-stubs (not subscriptable at runtime): hence the
# `type: ignore[type-arg]` on each class below.
from django.contrib import admin
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from apps.templates.admin_forms import TemplateForm
from apps.templates.models import Template, TemplateVariant, TemplateVersion
from apps.templates.preview import sample_variables, version_preview
from apps.templates.selectors import template_current_version
from apps.templates.services import template_metadata_save, template_save

PREVIEW_FRAGMENT = "admin/templates/template/preview_fragment.html"
PREVIEW_PAGE = "admin/templates/template/preview.html"


class ReadOnlyMixin:
    """Viewable, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VersionInline(ReadOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = TemplateVersion
    fields = ("number", "variables", "variant_list", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    ordering = ("-number",)

    @admin.display(description="variants")
    def variant_list(self, obj: TemplateVersion) -> str:
        return ", ".join(str(v) for v in obj.variants.order_by("channel", "locale"))


class VariantInline(ReadOnlyMixin, admin.StackedInline):  # type: ignore[type-arg]
    model = TemplateVariant
    fields = ("channel", "locale", "subject", "title", "body", "html")
    readonly_fields = fields
    extra = 0


def _preview_context(
    request: HttpRequest, template: Template, version: TemplateVersion | None
) -> dict[str, Any]:
    """Sample variables from `?variables=` (JSON object), else one per required variable."""
    raw = request.GET.get("variables")
    name = request.GET.get("name", "Ada")
    error = ""
    variables: dict[str, Any] = sample_variables(version=version)
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            parsed, error = None, f"Variables are not valid JSON: {exc}"
        if parsed is not None and not isinstance(parsed, dict):
            error = "Variables must be a JSON object."
        elif isinstance(parsed, dict):
            variables = parsed
    recipient = {"external_id": "preview", "name": name, "locale": "en", "data": {}}
    previews = (
        version_preview(version=version, variables=variables, recipient=recipient)
        if version is not None and not error
        else []
    )
    return {
        "template_obj": template,
        "version": version,
        "previews": previews,
        "variables_json": raw or json.dumps(variables, indent=2),
        "recipient_name": name,
        "preview_error": error,
        "preview_url": reverse("admin:templates_template_preview", args=[template.pk]),
    }


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = TemplateForm
    change_form_template = "admin/templates/template/change_form.html"
    list_display = (
        "key",
        "client",
        "category",
        "default_priority",
        "current_version",
        "updated_at",
    )
    list_filter = ("client", "category", "default_priority", "updated_at")
    search_fields = ("key", "category", "client__name")
    readonly_fields = ("created_at", "updated_at", "preview_link")
    list_select_related = ("client",)
    inlines = [VersionInline]

    def save_model(self, request: HttpRequest, obj: Template, form: Any, change: bool) -> None:
        """Changed variants go through `template_save` (a new version); otherwise only the
        metadata is saved."""
        if form.new_variants is None:
            template_metadata_save(template=obj)
            return
        template, _ = template_save(
            client=obj.client,
            key=obj.key,
            variants=form.new_variants,
            category=obj.category,
            default_priority=obj.default_priority,
            variables=list(obj.variables or []),
        )
        obj.pk = template.pk
        obj.created_at = template.created_at
        obj.updated_at = template.updated_at

    def get_queryset(self, request: HttpRequest) -> QuerySet[Template]:
        qs: QuerySet[Template] = super().get_queryset(request)
        return qs.annotate(latest=Max("versions__number"))

    @admin.display(description="version", ordering="latest")
    def current_version(self, obj: Template) -> int | None:
        return getattr(obj, "latest", None)

    @admin.display(description="preview")
    def preview_link(self, obj: Template) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:templates_template_preview", args=[obj.pk])
        return format_html('<a href="{}">Open the preview on its own page</a>', url)

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="templates_template_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Every variant of a version rendered from sample variables (`?variables=` JSON,
        `?version=` number, `?name=` recipient name; `?fragment=1` for the live panel)."""
        template = get_object_or_404(Template, pk=object_id)
        if not self.has_view_permission(request, template):
            return HttpResponse(status=403)
        version = template_current_version(template=template)
        wanted = request.GET.get("version", "")
        if wanted.isdigit():
            version = get_object_or_404(template.versions, number=int(wanted))
        context = _preview_context(request, template, version)
        if request.GET.get("fragment"):
            return TemplateResponse(request, PREVIEW_FRAGMENT, context)
        context.update(
            self.admin_site.each_context(request),
            opts=self.opts,
            title=f"Preview of {template.key}",
        )
        return TemplateResponse(request, PREVIEW_PAGE, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        template = Template.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if template is not None:
            version = template_current_version(template=template)
            extra_context = {
                **(extra_context or {}),
                **_preview_context(request, template, version),
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "template", "number", "created_at")
    list_filter = ("template__client", "template__category", "created_at")
    search_fields = ("template__key",)
    readonly_fields = ("template", "number", "variables", "created_at", "preview_link")
    list_select_related = ("template",)
    inlines = [VariantInline]

    @admin.display(description="preview")
    def preview_link(self, obj: TemplateVersion) -> str:
        url = reverse("admin:templates_template_preview", args=[obj.template_id])
        return format_html('<a href="{}?version={}">Preview this version</a>', url, obj.number)


@admin.register(TemplateVariant)
class TemplateVariantAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "version", "channel", "locale", "subject", "title")
    list_filter = ("channel", "locale", "version__template__client")
    search_fields = ("version__template__key", "subject", "title", "body")
    readonly_fields = ("version", "channel", "locale", "subject", "title", "body", "html")
    list_select_related = ("version__template",)
