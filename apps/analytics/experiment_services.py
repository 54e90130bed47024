"""Writes of the analytics app for A/B tests: ending one (the fold's writes are services.py)."""

from __future__ import annotations

from django.db import transaction

from apps.deliveries.assignments import variant_assignments_delete
from apps.templates.models import Template, TemplateVersion
from apps.templates.selectors import variant_group, variant_weights
from apps.templates.services import template_variant_promote


@transaction.atomic
def experiment_promote(
    *, template: Template, channel: str, locale: str, label: str, actor: str
) -> TemplateVersion:
    """End the A/B test of `channel`/`locale` by promoting `label`
    (apps.templates.services.template_variant_promote: a new, noted version) and, when no
    locale of that channel runs a test any more, delete the channel's stored assignments (a
    later test starts from nobody). InvalidInput as template_variant_promote."""
    version = template_variant_promote(
        template=template, channel=channel, locale=locale, label=label, actor=actor
    )
    locales = set(version.variants.filter(channel=channel).values_list("locale", flat=True))
    still = any(
        variant_weights(variant_group(version=version, channel=channel, locale=other))
        for other in locales
    )
    if not still:
        variant_assignments_delete(template_id=template.pk, channel=channel)
    return version
