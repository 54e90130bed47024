"""Rendering every variant of a template version with sample variables (the admin preview)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apps.templates.limits import render_limits
from apps.templates.models import TemplateVersion
from notifier.rendering import render, required_variables

PARTS = ("subject", "title", "body", "html")


def _plain(value: str) -> str:
    # Django marks rendered output safe; the admin must escape it again when showing it, so
    # hand it on as a plain str (slicing a str subclass returns a plain str).
    return value[:]


@dataclass(frozen=True)
class VariantPreview:
    channel: str
    locale: str
    subject: str = ""
    label: str = ""  # an A/B test's label: every sibling is previewed
    title: str = ""
    body: str = ""
    html: str = ""
    error: str = ""


def sample_variables(*, version: TemplateVersion | None) -> dict[str, str]:
    """A starting point for the preview form: each required variable set to its own name."""
    return {name: f"<{name}>" for name in (version.variables if version else [])}


def version_preview(
    *, version: TemplateVersion, variables: dict[str, Any], recipient: dict[str, Any]
) -> list[VariantPreview]:
    """Each variant of `version` rendered as a worker would, channel then locale."""
    variants = version.variants.order_by("channel", "locale", "label").values(
        "channel", "locale", "label", "subject", "title", "body", "html"
    )
    return variants_preview(variants=list(variants), variables=variables, recipient=recipient)


def draft_required_variables(
    *, variants: Sequence[Mapping[str, Any]], declared: Sequence[str]
) -> list[str]:
    """What a version saved from `variants` would require: the declared list, else what the
    sources read (as template_version_create computes it)."""
    sources = [str(v.get(part) or "") for v in variants for part in PARTS]
    return list(declared) or required_variables(sources)


def variants_preview(
    *, variants: Sequence[Mapping[str, Any]], variables: dict[str, Any], recipient: dict[str, Any]
) -> list[VariantPreview]:
    """Each variant (saved, or unsaved from the admin form) rendered as a worker would, in the
    channel's limits; one that fails shows its error instead."""
    previews = []

    def order(v: Mapping[str, Any]) -> tuple[str, str, str]:
        return (v["channel"], v.get("locale") or "en", v.get("label") or "")

    for variant in sorted(variants, key=order):
        channel, locale = variant["channel"], variant.get("locale") or "en"
        label = str(variant.get("label") or "")
        try:
            rendered = render(
                **{part: str(variant.get(part) or "") for part in PARTS},
                variables=variables,
                recipient=recipient,
                limits=render_limits(channel=channel),
            )
        except Exception as exc:  # a broken variant must still show on the page
            error = f"{type(exc).__name__}: {exc}"
            previews.append(VariantPreview(channel, locale, label=label, error=error))
            continue
        previews.append(
            VariantPreview(
                channel=channel,
                locale=locale,
                label=label,
                subject=_plain(rendered.subject),
                title=_plain(rendered.title),
                body=_plain(rendered.body),
                html=_plain(rendered.html),
            )
        )
    return previews
