"""Rendering every variant of a template version with sample variables (the admin preview)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.templates.limits import render_limits
from apps.templates.models import TemplateVersion
from notifier.rendering import render


def _plain(value: str) -> str:
    # Django marks rendered output safe; the admin must escape it again when showing it, so
    # hand it on as a plain str (slicing a str subclass returns a plain str).
    return value[:]


@dataclass(frozen=True)
class VariantPreview:
    channel: str
    locale: str
    subject: str = ""
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
    previews = []
    for variant in version.variants.order_by("channel", "locale"):
        try:
            rendered = render(
                subject=variant.subject,
                title=variant.title,
                body=variant.body,
                html=variant.html,
                variables=variables,
                recipient=recipient,
                limits=render_limits(channel=variant.channel),
            )
        except Exception as exc:  # a broken stored version must still show on the page
            previews.append(
                VariantPreview(
                    variant.channel, variant.locale, error=f"{type(exc).__name__}: {exc}"
                )
            )
            continue
        previews.append(
            VariantPreview(
                channel=variant.channel,
                locale=variant.locale,
                subject=_plain(rendered.subject),
                title=_plain(rendered.title),
                body=_plain(rendered.body),
                html=_plain(rendered.html),
            )
        )
    return previews
