from __future__ import annotations

from django.db import models

from apps.clients.models import ApiClient
from notifier.types import Channel, Priority


class Template(models.Model):
    """A notification template. Its content lives in immutable versions."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="templates")
    key = models.SlugField(max_length=100)
    category = models.CharField(max_length=50, default="general")
    default_priority = models.CharField(
        max_length=10, choices=[(p.value, p.value) for p in Priority], default=Priority.NORMAL
    )
    # Declared variables; empty means "inferred from the bodies".
    variables = models.JSONField(default=list, blank=True)
    # {"limit": 1, "window": "10m", "key": "{{ thread_id }}"} or null (notifier.workflows).
    throttle = models.JSONField(null=True, blank=True)
    # A digest declaration, {"window": "1h", "key": "{{ post_id }}", "max_items": 50}, or
    # null (notifier/digests.py checks it).
    digest = models.JSONField(null=True, blank=True, default=None)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="template_unique_key")
        ]

    def __str__(self) -> str:
        return self.key


class TemplateVersion(models.Model):
    """One saved state of a template's variants. Never edited after creation."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # Variables the bodies need (declared or inferred at save time).
    variables = models.JSONField(default=list)
    # What made this version when it was not an edit of the content (e.g. "promoted B of
    # email/en (by alice)"); "" for an ordinary save.
    note = models.CharField(max_length=200, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_unique")
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"{self.template.key} v{self.number}"


class TemplateVariant(models.Model):
    """The content for one channel and locale within a version."""

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="variants")
    channel = models.CharField(max_length=10, choices=[(c.value, c.value) for c in Channel])
    locale = models.CharField(max_length=20, default="en")
    subject = models.CharField(max_length=500, blank=True, default="")
    title = models.CharField(max_length=500, blank=True, default="")
    body = models.TextField()
    html = models.TextField(blank=True, default="")
    # An A/B test: siblings for the same channel and locale, each with a label ("A", "B", ...)
    # and a relative weight; "" (and weight 1) for a variant that is not in a test.
    label = models.CharField(max_length=20, blank=True, default="", db_default="")
    weight = models.PositiveIntegerField(default=1, db_default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "channel", "locale", "label"], name="template_variant_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}/{self.locale}"
