"""Reads for templates."""

from __future__ import annotations

from functools import lru_cache

from django.db.models import Prefetch, QuerySet

from apps.clients.models import ApiClient
from apps.templates.models import Template, TemplateVariant, TemplateVersion


def template_current_version(*, template: Template) -> TemplateVersion | None:
    return template.versions.order_by("-number").first()


def template_current_by_key(*, client: ApiClient, key: str) -> TemplateVersion | None:
    """The current version of the client's template `key`, its template loaded with it (one
    query); None when there is no such template or it has no version."""
    return (
        TemplateVersion.objects.select_related("template")
        .filter(template__client=client, template__key=key)
        .order_by("-number")
        .first()
    )


@lru_cache(maxsize=512)
def _version_variants(version_id: int) -> tuple[TemplateVariant, ...]:
    # Versions are immutable once saved: each worker reads a version's variants once, not on
    # every send (one query fewer per delivery).
    return tuple(TemplateVariant.objects.filter(version_id=version_id))


def variant_group(*, version: TemplateVersion, channel: str, locale: str) -> list[TemplateVariant]:
    """The variants a recipient of `locale` may get on `channel`: those of `locale`, else of its
    language (`pt` for `pt-BR`), else `en`, else of the first locale; several when that locale
    runs an A/B test (siblings with labels, in label order), else one; empty without any."""
    by_locale: dict[str, list[TemplateVariant]] = {}
    for variant in _version_variants(version.pk):
        if variant.channel == channel:
            by_locale.setdefault(variant.locale, []).append(variant)
    if not by_locale:
        return []
    language = locale.split("-")[0]
    found = next((by_locale[c] for c in (locale, language, "en") if c in by_locale), None)
    group = found if found is not None else by_locale[min(by_locale)]
    return sorted(group, key=lambda v: v.label)


def variant_weights(group: list[TemplateVariant]) -> list[tuple[str, int]]:
    """A test's (label, weight) list for notifier.experiments.assign; empty outside a test. A
    test is two or more labelled siblings: a lone variant is not one, labelled or not."""
    if len(group) < 2 or not any(v.label for v in group):
        return []
    return [(v.label, v.weight) for v in group]


def variant_pick(
    *, version: TemplateVersion, channel: str, locale: str, label: str = ""
) -> TemplateVariant | None:
    """The variant for `locale` (variant_group's fallbacks) with `label` (the first label of a
    test when `label` is not among them)."""
    group = variant_group(version=version, channel=channel, locale=locale)
    return next((v for v in group if v.label == label), group[0] if group else None)


def version_channels(*, version: TemplateVersion) -> list[str]:
    return sorted({v.channel for v in _version_variants(version.pk)})


def version_labelled_channels(*, version: TemplateVersion) -> list[str]:
    """The channels on which the version runs an A/B test of the copy (two or more labelled
    siblings of a locale: variant_weights)."""
    groups: dict[tuple[str, str], list[TemplateVariant]] = {}
    for variant in _version_variants(version.pk):
        groups.setdefault((variant.channel, variant.locale), []).append(variant)
    return sorted({channel for (channel, _), group in groups.items() if variant_weights(group)})


def templates_visible_to(*, client: ApiClient) -> QuerySet[Template]:
    """What a key may see: its client's templates, or every client's for ops keys."""
    qs = Template.objects.all()
    return qs if client.is_ops else qs.filter(client=client)


def template_get(*, client: ApiClient, key: str) -> Template | None:
    """The template `key` as `client` sees it; ops keys find their own first, then the oldest."""
    found = Template.objects.filter(client=client, key=key).first()
    if found is None and client.is_ops:
        found = Template.objects.filter(key=key).order_by("id").first()
    return found


def template_versions(*, template: Template) -> QuerySet[TemplateVersion]:
    """Every version of `template`, newest first, with their variants."""
    return template.versions.prefetch_related(
        Prefetch("variants", queryset=TemplateVariant.objects.order_by("channel", "locale"))
    ).order_by("-number")
