"""Admin for recipients (devices and preferences inline), devices, preferences, suppressions.

Recipients are never deleted here (that would cascade into delivery history): the
"Erase personal data (GDPR)" action does what `DELETE /api/v1/recipients/{id}` does.
"""

from __future__ import annotations

from typing import Any

from django import forms

# Admin classes are generic only in django-stubs (not subscriptable at runtime): hence the
# `type: ignore[type-arg]` on each class below.
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.recipients.models import Device, Preference, Recipient, RecipientEvent, Suppression
from apps.recipients.services import recipient_erase
from apps.recipients.validation import normalise_phone, validate_locale, validate_timezone

# The newest events a recipient's page shows in its timeline.
TIMELINE_SHOWN = 100


class RecipientForm(forms.ModelForm):  # type: ignore[type-arg]
    """The API's rules: E.164 phone, IANA timezone, locale tag."""

    class Meta:
        model = Recipient
        fields = [
            "client",
            "external_id",
            "email",
            "phone",
            "locale",
            "timezone",
            "name",
            "data",
        ]

    def clean_phone(self) -> str:
        return normalise_phone(self.cleaned_data.get("phone") or "")

    def clean_timezone(self) -> str:
        value: str = self.cleaned_data["timezone"]
        validate_timezone(value)
        return value

    def clean_locale(self) -> str:
        value: str = self.cleaned_data["locale"]
        validate_locale(value)
        return value


class DeviceForm(forms.ModelForm):  # type: ignore[type-arg]
    """The device's client is its recipient's (not a form field); a token is unique per
    client, said as a form error rather than a database error."""

    class Meta:
        model = Device
        fields = ["recipient", "token", "platform", "active", "deactivated_reason"]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        recipient = cleaned.get("recipient")
        # In the inline on a recipient's page the recipient is the page's, set on the instance.
        recipient_id = recipient.pk if recipient is not None else self.instance.recipient_id
        token = cleaned.get("token")
        if recipient_id is None or not token:
            return cleaned
        client_id = Recipient.objects.values_list("client_id", flat=True).get(pk=recipient_id)
        self.instance.client_id = client_id
        taken = Device.objects.filter(client_id=client_id, token=token).exclude(pk=self.instance.pk)
        if taken.exists():
            self.add_error("token", "This client already has a device with this token.")
        return cleaned


class DeviceInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Device
    form = DeviceForm
    fields = ("token", "platform", "active", "deactivated_reason", "last_seen_at", "created_at")
    readonly_fields = ("last_seen_at", "created_at")
    extra = 0


class PreferenceInline(admin.StackedInline):  # type: ignore[type-arg]
    model = Preference
    fields = (
        "channels",
        "categories",
        "quiet_start",
        "quiet_end",
        "daily_limit",
        "digest",
        "updated_at",
    )
    # Digest cadences are checked by the API (PATCH .../preferences): shown, not edited here.
    readonly_fields = ("digest", "updated_at")
    max_num = 1
    extra = 0


class ErasedFilter(admin.SimpleListFilter):
    title = "erased"
    parameter_name = "erased"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Erased"), ("no", "Active")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(erased_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(erased_at__isnull=True)
        return queryset


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = RecipientForm
    list_display = ("external_id", "client", "name", "email", "phone", "locale", "timezone")
    list_filter = (ErasedFilter, "client", "locale", "timezone", "created_at")
    search_fields = ("external_id", "email", "phone", "name", "client__name")
    readonly_fields = ("created_at", "updated_at", "erased_at", "timeline")
    list_select_related = ("client",)
    inlines = [PreferenceInline, DeviceInline]
    actions = ["erase"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Timeline")
    def timeline(self, obj: Recipient) -> str:
        """What the recipient did through the hosted links (unsubscribes, preference centre
        saves), newest first: a record, not a form (nothing to post back)."""
        events = RecipientEvent.objects.filter(recipient_id=obj.pk)[:TIMELINE_SHOWN]
        if obj.pk is None or not events:
            return "No events."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e.created_at.isoformat(timespec="seconds"),
                    e.kind,
                    e.category,
                    e.channel,
                    e.source,
                )
                for e in events
            ),
        )
        return format_html(
            "<table><thead><tr><th>at</th><th>event</th><th>category</th><th>channel</th>"
            "<th>source</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Devices added inline on a new recipient: its client is known only now.
        for device in formset.save(commit=False):
            if isinstance(device, Device):
                device.client_id = form.instance.client_id
            device.save()
        for gone in formset.deleted_objects:
            gone.delete()
        formset.save_m2m()

    @admin.action(description="Erase personal data (GDPR)")
    def erase(self, request: HttpRequest, queryset: QuerySet[Recipient]) -> None:
        live = list(queryset.filter(erased_at__isnull=True))
        for recipient in live:
            recipient_erase(recipient=recipient)
        self.message_user(request, f"Erased {len(live)} recipient(s).", messages.SUCCESS)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = DeviceForm
    list_display = ("__str__", "client", "recipient", "platform", "active", "last_seen_at")
    list_filter = ("platform", "active", "client", "last_seen_at")
    search_fields = ("token", "recipient__external_id", "deactivated_reason")
    readonly_fields = ("client", "last_seen_at", "created_at")
    raw_id_fields = ("recipient",)
    list_select_related = ("client", "recipient")


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("recipient", "quiet_start", "quiet_end", "daily_limit", "updated_at")
    list_filter = ("recipient__client", "updated_at")
    search_fields = ("recipient__external_id", "recipient__name")
    readonly_fields = ("updated_at",)
    raw_id_fields = ("recipient",)
    list_select_related = ("recipient",)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("address", "channel", "reason", "client", "created_at")
    list_filter = ("channel", "reason", "client", "created_at")
    search_fields = ("address", "reason")
    readonly_fields = ("created_at",)


@admin.register(RecipientEvent)
class RecipientEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Every recipient's timeline in one list (unsubscribes, preference centre saves): a record
    written by the services, read here."""

    list_display = ("created_at", "recipient", "kind", "category", "channel", "source")
    list_filter = ("kind", "source", "channel", "recipient__client", "created_at")
    search_fields = ("recipient__external_id", "category")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
