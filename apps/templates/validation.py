"""Content checks for template variants: every source parses and renders with sample values.

A template that passes here cannot crash a worker with a syntax error, uses no forbidden tag,
stays within its channel's render limits with sample values and has an email subject without
line breaks; a missing variable, or variables that make it too large, are caught at the API by
the notification request's own test render (apps/deliveries/services.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apps.core.errors import InvalidInput
from apps.templates.limits import render_limits
from apps.templates.models import TemplateVersion
from apps.templates.selectors import variant_pick
from notifier.channels import spec
from notifier.rendering import (
    Rendered,
    RenderLimitExceeded,
    TemplateError,
    render,
    required_variables,
)

SOURCE_FIELDS = ("subject", "title", "body", "html")
SAMPLE_RECIPIENT = {"external_id": "sample", "name": "Sample", "locale": "en", "data": {}}
LINE_BREAKS = ("\r", "\n")


def has_line_break(value: str) -> bool:
    """Email subjects become a header: a CR or LF would start another header."""
    return any(c in value for c in LINE_BREAKS)


def _sample_render(field: str, source: str, *, channel: str) -> Rendered:
    """Render one part with every variable set to a sample; a failure that a numeric sample
    avoids (`ljust:width` with a word for `width`) is the sample's, not the source's."""
    names = required_variables([source])
    limits = render_limits(channel=channel)
    try:
        return render(
            **{field: source},
            variables=dict.fromkeys(names, "sample"),
            recipient=SAMPLE_RECIPIENT,
            limits=limits,
        )
    except RenderLimitExceeded:
        raise
    except Exception:
        return render(
            **{field: source},
            variables=dict.fromkeys(names, "1"),
            recipient=SAMPLE_RECIPIENT,
            limits=limits,
        )


def _label(index: int, variant: Mapping[str, Any]) -> str:
    return f"variant {index} ({variant.get('channel')}/{variant.get('locale') or 'en'})"


def template_variants_check(*, variants: Sequence[Mapping[str, Any]]) -> None:
    """Raise InvalidInput naming the variant and field whose source does not parse or render."""
    errors: dict[str, dict[str, list[str]]] = {}
    messages: list[str] = []
    for index, variant in enumerate(variants):
        sources = {f: str(variant.get(f) or "") for f in SOURCE_FIELDS}
        for field, source in sources.items():
            try:
                rendered = _sample_render(field, source, channel=str(variant.get("channel")))
            except TemplateError as exc:
                problem = f"does not parse: {exc}"
            except RenderLimitExceeded as exc:
                problem = f"exceeds the render limits: {exc}"
            except Exception as exc:  # any render-time failure comes from the author's source
                problem = f"does not render: {type(exc).__name__}: {exc}"
            else:
                if not (field == "subject" and has_line_break(rendered.subject)):
                    continue
                problem = "contains a line break (CR or LF)"
            errors.setdefault(str(index), {})[field] = [problem]
            messages.append(f"{_label(index, variant)} {field} {problem}")
    if errors:
        raise InvalidInput(messages[0], fields={"variants": errors})


def version_render_check(
    *,
    version: TemplateVersion,
    channels: Sequence[str],
    variables: Mapping[str, Any],
    recipients: Mapping[str, Mapping[str, Any]],
) -> None:
    """Render what the deliveries will render (each channel's variant for each recipient locale,
    `recipients` maps a locale to one recipient's template context) within the channel's
    limits; raise InvalidInput naming `variables` when it fails or a subject breaks a line."""
    seen: set[int] = set()
    for channel in channels:
        for locale, recipient in recipients.items():
            variant = variant_pick(version=version, channel=channel, locale=locale)
            if variant is None or variant.pk in seen:
                continue
            seen.add(variant.pk)
            label = f"the {channel}/{variant.locale} variant of template {version.template.key!r}"
            try:
                rendered = render(
                    subject=variant.subject,
                    title=variant.title,
                    body=variant.body,
                    html=variant.html if spec(channel).html else "",
                    variables=variables,
                    recipient=recipient,
                    limits=render_limits(channel=channel),
                )
            except RenderLimitExceeded as exc:
                problem = f"{label} exceeds the render limits with these variables: {exc}"
            except Exception as exc:  # the variables' values broke a filter or tag
                problem = f"{label} does not render with these variables: {exc}"
            else:
                if not has_line_break(rendered.subject):
                    continue
                problem = f"{label} renders its subject with a line break (CR or LF)"
            raise InvalidInput(problem[:1000], fields={"variables": [problem[:1000]]})
