"""The template admin's A/B tests: each running test's results on the template's change page
(experiment_summary over the last 30 days) and a button per label that promotes its copy
(apps.analytics.services.experiment_promote). The analytics app sits above templates,
so it extends the template admin (apps/analytics/admin.py registers this class in its place)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from apps.analytics.experiment_services import experiment_promote
from apps.analytics.experiments import experiment_summary
from apps.core.errors import InvalidInput
from apps.deliveries.models import VariantAssignment
from apps.templates.admin import TemplateAdmin
from apps.templates.models import Template

SUMMARY_DAYS = 30


class TemplateExperimentsAdmin(TemplateAdmin):
    change_form_template = "admin/analytics/template/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        promote = path(
            "<path:object_id>/promote/",
            self.admin_site.admin_view(self.promote_view),
            name="templates_template_promote",
        )
        return [promote, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # get_object: None for an id that is no template's (or no number at all, "²" or "abc").
        template = self.get_object(request, object_id)
        if template is None:
            raise Http404("No such template.")
        if self.has_view_permission(request, template):
            end = timezone.now()
            start = (end - dt.timedelta(days=SUMMARY_DAYS)).replace(
                minute=0, second=0, microsecond=0
            )  # the rollup's hours: whole hours only
            extra_context = {
                **(extra_context or {}),
                "experiments": experiment_summary(
                    client=template.client, template=template, start=start, end=end
                ),
                "experiments_days": SUMMARY_DAYS,
                "promote_url": reverse("admin:templates_template_promote", args=[template.pk]),
                "can_promote": self.has_change_permission(request, template),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def promote_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST `channel`, `locale` and `label`: that label's copy becomes the only variant of
        its channel and locale in a new version; back to the change page with a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        template = self.get_object(request, object_id)
        if template is None:
            raise Http404("No such template.")
        if not self.has_change_permission(request, template):
            return HttpResponse(status=403)
        channel, locale, label = (
            str(request.POST.get(name) or "")[:40] for name in ("channel", "locale", "label")
        )
        try:
            version = experiment_promote(
                template=template,
                channel=channel,
                locale=locale,
                label=label,
                actor=request.user.get_username(),
            )
        except InvalidInput as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                f"Promoted {label} of {channel}/{locale}: version {version.number} sends its "
                "copy to everyone.",
            )
        url = reverse("admin:templates_template_change", args=[template.pk])
        return HttpResponseRedirect(url)


class VariantAssignmentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The sticky A/B assignments, read-only: the send path writes them (assignments.py)."""

    list_display = ("recipient", "template", "channel", "label", "assigned_at")
    list_filter = ("channel", "label", "template__client")
    search_fields = ("template__key", "recipient__external_id")
    list_select_related = ("recipient", "template")
    readonly_fields = ("template", "recipient", "channel", "label", "assigned_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def register(site: admin.AdminSite) -> None:
    """Put the A/B tests on the template admin (replacing apps.templates' registration) and
    show the stored assignments."""
    if site.is_registered(Template):
        site.unregister(Template)
    site.register(Template, TemplateExperimentsAdmin)
    site.register(VariantAssignment, VariantAssignmentAdmin)
