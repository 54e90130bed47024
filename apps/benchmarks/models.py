from __future__ import annotations

from django.db import models


class BenchRow(models.Model):
    """One row per request to the bare benchmark endpoint (the ingestion ceiling)."""

    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"bench row {self.pk}"
