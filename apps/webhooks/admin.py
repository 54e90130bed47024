"""Admin for webhook endpoints: each with its latest attempts (status, duration, the answer's
first 1 KiB) and messages, a link to its whole attempt log, dead-letter replay (an action on the
messages), and a notice for endpoints the service disabled. Edits and deletes go through the
services, as the API's do (the URL checked, enabling starts afresh, the presence cache told)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.core.errors import InvalidInput
from apps.deliveries.admin import ReadOnlyInline
from apps.webhooks.alerts import endpoints_disabled_unseen
from apps.webhooks.models import (
    SUBSCRIBABLE,
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from apps.webhooks.services import endpoint_delete, endpoint_update, messages_replay, url_validate

# The endpoint page's inline shows this many attempts; the log link shows them all.
INLINE_ATTEMPTS = 20


def _disabled_notice(request: HttpRequest) -> None:
    for endpoint in endpoints_disabled_unseen():
        messages.warning(
            request,
            f"Webhook endpoint {endpoint.url} of {endpoint.client} was disabled by the service "
            f"on {endpoint.disabled_at:%Y-%m-%d %H:%M} UTC: {endpoint.disabled_reason}.",
        )


# What an operator may change; saved through endpoint_update like the API's PATCH (the URL
# checked, enabling starts afresh, the presence cache told).
EDITABLE = ("url", "description", "events", "enabled", "include_content")


class EndpointForm(forms.ModelForm):  # type: ignore[type-arg]
    """The API's rules in the admin: a URL that may be sent to, a list of subscribable types."""

    class Meta:
        model = WebhookEndpoint
        fields = EDITABLE

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"])
        if "url" in self.changed_data:
            try:
                url = url_validate(url)
            except InvalidInput as exc:
                raise forms.ValidationError(exc.message) from None
        return url

    def clean_events(self) -> list[str]:
        events = self.cleaned_data["events"]
        if not isinstance(events, list) or not events:
            raise forms.ValidationError("A non-empty JSON list of event types.")
        unknown = [e for e in events if not isinstance(e, str) or e not in SUBSCRIBABLE]
        if unknown:
            raise forms.ValidationError(
                f"Unknown event types {unknown}; one of: {', '.join(SUBSCRIBABLE)}."
            )
        return list(dict.fromkeys(events))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = EndpointForm
    list_display = ("url", "client", "enabled", "disabled_reason", "failing_since", "created_at")
    list_filter = ("enabled", "client")
    search_fields = ("url", "description", "client__name")
    exclude = ("secret", "previous_secret")
    readonly_fields = (
        "id",
        "client",
        "failing_since",
        "disabled_reason",
        "disabled_at",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
        "logs",
        "latest_attempts",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # endpoints are a client's, made through its API key (the secret shown once)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        _disabled_notice(request)
        return super().changelist_view(request, extra_context)

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        """Through the service, as the API's PATCH (no add: has_add_permission)."""
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE}
        if changes:
            endpoint_update(endpoint=obj, changes=changes)
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        endpoint_delete(endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint_delete(endpoint=endpoint)

    @admin.display(description="Logs")
    def logs(self, obj: WebhookEndpoint) -> str:
        attempts = reverse("admin:webhooks_webhookattempt_changelist")
        message_list = reverse("admin:webhooks_webhookmessage_changelist")
        return format_html(
            '<a href="{}?endpoint__id__exact={}">every attempt</a> · '
            '<a href="{}?endpoint__id__exact={}">messages</a> · '
            '<a href="{}?endpoint__id__exact={}&state__exact=dead">dead letters</a>',
            attempts,
            obj.pk,
            message_list,
            obj.pk,
            message_list,
            obj.pk,
        )

    @admin.display(description=f"Latest attempts (up to {INLINE_ATTEMPTS})")
    def latest_attempts(self, obj: WebhookEndpoint) -> str:
        rows = WebhookAttempt.objects.filter(endpoint=obj).select_related("message")[
            :INLINE_ATTEMPTS
        ]
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td>"
            "<td><code>{}</code></td></tr>",
            (
                (
                    f"{a.started_at:%Y-%m-%d %H:%M:%S}",
                    a.message.event_id,
                    a.number,
                    a.status_code or "-",
                    a.duration_ms,
                    a.error or "ok",
                    a.response_excerpt,
                )
                for a in rows
            ),
        )
        if not body:
            return "none yet"
        return format_html(
            "<table><tr><th>started</th><th>message</th><th>#</th><th>status</th>"
            "<th>duration</th><th>outcome</th><th>response (first 1 KiB)</th></tr>{}</table>",
            body,
        )


class MessageAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fk_name = "message"
    fields = readonly_fields = (
        "number",
        "started_at",
        "ok",
        "status_code",
        "duration_ms",
        "error",
        "response_excerpt",
    )


@admin.register(WebhookMessage)
class WebhookMessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("event_id", "type", "endpoint", "state", "attempts", "created_at")
    list_filter = ("state", "type", "endpoint")
    search_fields = ("event_id",)
    readonly_fields = [f.name for f in WebhookMessage._meta.fields]
    inlines = [MessageAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Replay the selected dead messages")
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookMessage]) -> None:
        ids = list(queryset.filter(state=MessageStatus.DEAD).values_list("pk", flat=True))
        done = messages_replay(ids=ids, replayed_by=f"admin:{request.user}")
        skipped = len(queryset) - len(done)
        self.message_user(request, f"Replayed {len(done)} message(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} not replayed: not dead, locked, or their endpoint is disabled.",
                messages.WARNING,
            )


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "started_at",
        "endpoint",
        "message",
        "number",
        "ok",
        "status_code",
        "duration_ms",
    )
    list_filter = ("ok", "endpoint")
    search_fields = ("message__event_id", "endpoint__url", "error")
    readonly_fields = [f.name for f in WebhookAttempt._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
