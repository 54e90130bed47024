"""Admin for templates: metadata, version history (read-only) and a live preview.

Versions and variants are immutable: they are what past deliveries were rendered from.
"""

from __future__ import annotations

import json
from typing import Any

# Admin classes are generic only in django-stubs (not subscriptable at runtime): hence the
# `type: ignore[type-arg]` on each class below.
from django import forms
from django.contrib import admin
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from apps.templates.admin_forms import (
    TemplateForm,
    declared_variables,
    json_field_loads,
    variants_parse,
)
from apps.templates.models import Template, TemplateVariant, TemplateVersion
from apps.templates.preview import (
    draft_required_variables,
    sample_variables,
    variants_preview,
    version_preview,
)
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
    fields = ("number", "note", "variables", "variant_list", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    ordering = ("-number",)

    @admin.display(description="variants")
    def variant_list(self, obj: TemplateVersion) -> str:
        variants = obj.variants.order_by("channel", "locale", "label")
        return ", ".join(f"{v} {v.label} ({v.weight})" if v.label else str(v) for v in variants)


class VariantInline(ReadOnlyMixin, admin.StackedInline):  # type: ignore[type-arg]
    model = TemplateVariant
    fields = ("channel", "locale", "label", "weight", "subject", "title", "body", "html")
    readonly_fields = fields
    extra = 0


def _parse_sample(raw: str) -> tuple[dict[str, Any], str]:
    """Sample variables typed into the preview (a JSON object), or the problem with them."""
    try:
        parsed = json_field_loads(raw)
    except forms.ValidationError as exc:
        return {}, f"Sample variables: {' '.join(exc.messages)}"
    if not isinstance(parsed, dict):
        return {}, "Variables must be a JSON object."
    return parsed, ""


def _preview_recipient(name: str) -> dict[str, Any]:
    return {"external_id": "preview", "name": name, "locale": "en", "data": {}}


def _preview_context(
    request: HttpRequest, template: Template, version: TemplateVersion | None
) -> dict[str, Any]:
    """Sample variables from `?variables=` (JSON object), else one per required variable."""
    raw = request.GET.get("variables")
    name = request.GET.get("name", "Ada")
    variables: dict[str, Any] = sample_variables(version=version)
    error = ""
    if raw:
        parsed, error = _parse_sample(raw)
        variables = parsed if not error else variables
    previews = (
        version_preview(version=version, variables=variables, recipient=_preview_recipient(name))
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


def draft_preview(request: HttpRequest) -> dict[str, Any]:
    """The live preview of what the form holds, unsaved: every variant rendered from the
    sample variables, and the problems a save would meet, by the field they belong to
    (`variants`, `variables`, `preview-variables`)."""
    errors: dict[str, list[str]] = {}
    sample, problem = _parse_sample(request.POST.get("sample") or "{}")
    if problem:
        errors["preview-variables"] = [problem]
    try:
        declared = declared_variables(json_field_loads(request.POST.get("variables") or "[]"))
    except forms.ValidationError as exc:
        declared = []
        errors["variables"] = list(exc.messages)
    try:
        variants = variants_parse(request.POST.get("variants") or "")
    except forms.ValidationError as exc:
        variants = []
        errors["variants"] = list(exc.messages)
    required = draft_required_variables(variants=variants, declared=declared)
    missing = [name for name in required if name not in sample]
    if missing and not problem:
        errors["preview-variables"] = [f"Missing template variables: {', '.join(missing)}."]
    name = request.POST.get("name") or "Ada"
    previews = (
        variants_preview(variants=variants, variables=sample, recipient=_preview_recipient(name))
        if variants and not problem
        else []
    )
    return {
        "previews": previews,
        "recipient_name": name,
        "draft": True,
        "errors": errors,
        # What an empty panel waits for (the fragment says which field to fix).
        "waiting_for": "" if previews else ("sample" if variants else "variants"),
    }


def _draft_context() -> dict[str, Any]:
    return {"draft_url": reverse("admin:templates_template_preview_draft")}


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
    # The digest declaration is checked by the API (PUT /api/v1/templates/{key}): shown here.
    readonly_fields = ("digest", "created_at", "updated_at", "preview_link", "analytics_link")
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
            throttle=obj.throttle,
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

    @admin.display(description="analytics")
    def analytics_link(self, obj: Template) -> str:
        if obj.pk is None:
            return "-"
        # The page lives in apps.ops (above this app): named by its URL only.
        url = reverse("ops-analytics")
        return format_html(
            '<a href="{}?template={}" id="template-analytics">Sent, opened, cost: this '
            "template's analytics</a>",
            url,
            obj.pk,
        )

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="templates_template_preview",
        )
        draft = path(
            "preview-draft/",
            self.admin_site.admin_view(self.preview_draft_view),
            name="templates_template_preview_draft",
        )
        return [draft, preview, *super().get_urls()]

    def preview_draft_view(self, request: HttpRequest) -> HttpResponse:
        """POST the change form's unsaved `variants` and `variables` with the preview's
        `sample` variables and `name`: {"html": the rendered panel, "errors": by field}."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            return HttpResponse(status=403)
        context = draft_preview(request)
        html = render_to_string(PREVIEW_FRAGMENT, context, request)
        return JsonResponse({"html": html, "errors": context["errors"]})

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), **_draft_context()}
        return super().add_view(request, form_url, extra_context)

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
        # get_object: None for an id that is no template's ("²" or "abc" too, never a 500).
        template = self.get_object(request, object_id)
        # The live preview POSTs to the draft endpoint, which wants the change (or add)
        # permission: view-only staff get the saved version's page (the preview link) instead.
        if template is not None and self.has_change_permission(request, template):
            version = template_current_version(template=template)
            extra_context = {
                **(extra_context or {}),
                **_preview_context(request, template, version),
                **_draft_context(),
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "template", "number", "note", "created_at")
    list_filter = ("template__client", "template__category", "created_at")
    search_fields = ("template__key",)
    readonly_fields = ("template", "number", "note", "variables", "created_at", "preview_link")
    list_select_related = ("template",)
    inlines = [VariantInline]

    @admin.display(description="preview")
    def preview_link(self, obj: TemplateVersion) -> str:
        url = reverse("admin:templates_template_preview", args=[obj.template_id])
        return format_html('<a href="{}?version={}">Preview this version</a>', url, obj.number)


@admin.register(TemplateVariant)
class TemplateVariantAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "version", "channel", "locale", "label", "weight", "subject")
    list_filter = ("channel", "locale", "version__template__client")
    search_fields = ("version__template__key", "subject", "title", "body")
    readonly_fields = (
        "version",
        "channel",
        "locale",
        "label",
        "weight",
        "subject",
        "title",
        "body",
        "html",
    )
    list_select_related = ("version__template",)
