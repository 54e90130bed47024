from __future__ import annotations

from django.db import models


class ApiClient(models.Model):
    """A product service calling the API. `is_ops` clients see every client's data."""

    name = models.CharField(max_length=100, unique=True)
    is_ops = models.BooleanField(default=False)
    # Who hears about the client's integration trouble (a webhook endpoint disabled): addresses
    # separated by commas, set in the admin. Empty: WEBHOOKS_ALERT_EMAILS.
    # db_default too: a process still running the previous release inserts without the column.
    operator_emails = models.CharField(max_length=500, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    # DRF treats the authenticated principal as `request.user`.
    @property
    def is_authenticated(self) -> bool:
        return True


class ApiKey(models.Model):
    """An API key. Only its SHA-256 is stored; `prefix` finds the row and is shown to operators."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.client})"
