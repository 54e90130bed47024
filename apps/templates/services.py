"""Writes for templates: every save of content is a new immutable version.

Each write here invalidates the per-process cache of current versions (`apps.templates.cache`)
in its transaction; every write path (the API, the admin) goes through these functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from apps.clients.models import ApiClient
from apps.core.errors import Conflict, InvalidInput
from apps.templates.cache import templates_cache_invalidate
from apps.templates.models import Template, TemplateVariant, TemplateVersion
from apps.templates.validation import template_variants_check
from notifier.rendering import required_variables

VARIANT_FIELDS = ("subject", "title", "body", "html")


@transaction.atomic
def template_version_create(
    *, template: Template, variants: Iterable[Mapping[str, Any]], note: str = ""
) -> TemplateVersion:
    """Freeze `variants` as the template's next version (required variables computed now);
    `note` says what made it when it was not an ordinary save."""
    templates_cache_invalidate()  # first: Redis down fails the write before anything is kept
    variants = list(variants)
    sources = [str(v.get(f) or "") for v in variants for f in VARIANT_FIELDS]
    required = list(template.variables) or required_variables(sources)
    last = template.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = TemplateVersion.objects.create(
        template=template, number=last + 1, variables=required, note=note[:200]
    )
    TemplateVariant.objects.bulk_create(
        TemplateVariant(
            version=version,
            channel=v["channel"],
            locale=v.get("locale") or "en",
            label=v.get("label") or "",
            weight=v.get("weight", 1),
            **{f: v.get(f) or "" for f in VARIANT_FIELDS},
        )
        for v in variants
    )
    return version


def template_exists_conflict(*, key: str) -> Conflict:
    return Conflict(
        f"Template {key!r} exists; PUT /api/v1/templates/{key} saves a new version.",
        fields={"key": ["already exists"]},
    )


@transaction.atomic
def template_create(
    *,
    client: ApiClient,
    key: str,
    variants: Iterable[Mapping[str, Any]],
    category: str = "general",
    default_priority: str = "normal",
    variables: list[str] | None = None,
    throttle: dict[str, Any] | None = None,
    digest: dict[str, Any] | None = None,
) -> tuple[Template, TemplateVersion]:
    """Create the template `key` with its first version; Conflict if the client has one.

    The INSERT decides, not a check before it: of concurrent creates with one key, the unique
    (client, key) index lets one commit and the others wait for it and then fail."""
    variants = list(variants)
    template_variants_check(variants=variants)
    try:
        with transaction.atomic():
            template = Template.objects.create(
                client=client,
                key=key,
                category=category,
                default_priority=default_priority,
                variables=list(variables or []),
                throttle=throttle,
                digest=digest,
            )
    except IntegrityError as exc:
        raise template_exists_conflict(key=key) from exc
    return template, template_version_create(template=template, variants=variants)


@transaction.atomic
def template_save(
    *,
    client: ApiClient,
    key: str,
    variants: Iterable[Mapping[str, Any]],
    category: str = "general",
    default_priority: str = "normal",
    variables: list[str] | None = None,
    throttle: dict[str, Any] | None = None,
    digest: dict[str, Any] | None = None,
) -> tuple[Template, TemplateVersion]:
    """Create or update a template and add a version with `variants` (checked first)."""
    variants = list(variants)
    template_variants_check(variants=variants)
    # get_or_create retries a lost INSERT race as a GET; the row lock then orders the versions.
    template, _ = Template.objects.select_for_update().get_or_create(client=client, key=key)
    template.category = category
    template.default_priority = default_priority
    template.variables = list(variables or [])
    template.throttle = throttle  # a PUT states the whole template: absent means none
    template.digest = digest
    template.save()
    return template, template_version_create(template=template, variants=variants)


@transaction.atomic
def template_metadata_save(*, template: Template) -> Template:
    """Save a template's own fields (category, priority, variables), not its content: no new
    version, but what the API caches with the version changes."""
    templates_cache_invalidate()
    template.save()
    return template


@transaction.atomic
def templates_delete(*, templates: QuerySet[Template]) -> int:
    """Delete templates with their versions (a template that notifications used is protected:
    Django's ProtectedError). Returns how many templates were deleted."""
    templates_cache_invalidate()
    _, deleted = templates.delete()
    return deleted.get(Template._meta.label, 0)


def _variant_data(variant: TemplateVariant) -> dict[str, Any]:
    return {
        "channel": variant.channel,
        "locale": variant.locale,
        "label": variant.label,
        "weight": variant.weight,
        **{f: getattr(variant, f) for f in VARIANT_FIELDS},
    }


@transaction.atomic
def template_variant_promote(
    *, template: Template, channel: str, locale: str, label: str, actor: str
) -> TemplateVersion:
    """End the A/B test of `channel`/`locale`: a new version in which `label`'s copy is that
    channel and locale's only variant (label cleared, weight 1), everything else unchanged,
    noted "promoted B of email/en (by alice)". InvalidInput when the current version has no
    such labelled variant."""
    template = Template.objects.select_for_update().get(pk=template.pk)  # orders the versions
    current = template.versions.order_by("-number").first()
    variants = list(current.variants.order_by("channel", "locale", "label")) if current else []
    winner = next(
        (
            v
            for v in variants
            if (v.channel, v.locale, v.label) == (channel, locale, label) and label
        ),
        None,
    )
    if winner is None:
        problem = f"no variant labelled {label!r} for {channel}/{locale} in the current version"
        raise InvalidInput(f"Cannot promote: {problem}.", fields={"label": [problem]})
    kept = [
        _variant_data(v)
        for v in variants
        if (v.channel, v.locale) != (channel, locale) or v.pk == winner.pk
    ]
    for data in kept:
        if (data["channel"], data["locale"]) == (channel, locale):
            data.update(label="", weight=1)
    note = f"promoted {label} of {channel}/{locale} (by {actor})"
    return template_version_create(template=template, variants=kept, note=note)
